"""HTTP benchmark: the daemon's GET /health against a bare aiohttp app, in one run.

Also measures daemon start-to-healthy time and `research --help` wall time; the contract and
access layers: a chat body's decode+validate, msgspec's and pydantic's import cost, an
authenticated rate-limited GET /api/status load against the owner's unauthenticated one, and
the peer check's cost per new connection.

    python scripts/bench_http.py [--runs 9] [--rounds 5] [--seconds 3] [--concurrency 32]
    python scripts/bench_http.py --start-only --runs 7     # start-up and --help only
    python scripts/bench_http.py --instructions            # start-up counted by valgrind

The daemon and `research` run from a non-editable install, as users get it: a wheel built
from --source (default: this checkout) into a temporary venv whose dependencies are this
interpreter's (a .pth file). --editable uses this environment's `research` instead.

Uses wrk when installed (a separate, faster load generator), else one aiohttp client for both.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

BARE_APP = """
import sys
from aiohttp import web
async def health(request):
    return web.json_response({"status": "ok"})
app = web.Application()
app.router.add_get("/health", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


# The daemon's start-up path to its bind, in one process and in order: the CLI's part before
# it forks, then the child's (imports, the pickled config, logging, the app, the bind). The
# parent's click and config checks run beside the child on the other core and are left out.
DAEMON_PATH = """
import asyncio, os, pickle, sys
import localresearch.cli.main
from localresearch.daemon.process import fork_early
from localresearch.daemon.lock import HomeLock
from localresearch.paths import resolve_paths
paths = resolve_paths()
paths.ensure()
HomeLock(paths.lock_file).try_acquire()
from localresearch.daemon.serve import event_loop_factory, preload
preload()
config, port = pickle.loads(open(sys.argv[1], "rb").read())
from localresearch.daemon.logs import setup_logging
from localresearch.daemon.native_memory import ARENAS, limit_arenas
from localresearch.daemon.process import check_bind, port_in_use
server = config.server
setup_logging(server.log_level, log_file=paths.log_file, max_bytes=server.log_max_bytes,
              backups=server.log_backups)
check_bind(config)
port_in_use(server.bind, port)
limit_arenas(ARENAS)
from aiohttp import web
from localresearch.server.app import LISTENING, make_app
async def main():
    app = make_app(config, paths, port=port)
    app[LISTENING] = asyncio.Event()
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, server.bind, port, reuse_address=True).start()
    os._exit(0)
with asyncio.Runner(loop_factory=event_loop_factory(config)) as runner:
    runner.run(main())
"""
BARE_PATH = """
import asyncio, os, sys
from aiohttp import web
async def health(request):
    return web.json_response({"status": "ok"})
async def main():
    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1])).start()
    os._exit(0)
asyncio.run(main())
"""
CONFIG_PICKLE = """
import pickle, sys
from localresearch.config import load_config
from localresearch.paths import resolve_paths
paths = resolve_paths()
paths.ensure()
with open(sys.argv[1], "wb") as out:
    pickle.dump((load_config(paths.config_file), int(sys.argv[2])), out)
"""


def count_instructions(python: str, env: dict[str, str]) -> dict[str, object]:
    """Instructions (valgrind's callgrind) from interpreter start to the bind: the daemon's
    start-up path against the bare aiohttp app's and `python -c pass`. Unlike times, the counts
    do not move with the machine's load or speed."""
    if shutil.which("valgrind") is None:
        return {"instructions": "valgrind not installed"}
    work = Path(tempfile.mkdtemp(prefix="lr-ir-"))
    atexit.register(shutil.rmtree, work, True)
    config = work / "config.pickle"
    subprocess.run([python, "-c", CONFIG_PICKLE, str(config), str(free_port())], env=env,
                   check=True)  # fmt: skip

    def counted(*argv: str) -> int:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python, *argv],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise RuntimeError(f"no count from callgrind: {done.stderr[-500:]}")
        return int(found.group(1))

    daemon = counted("-c", DAEMON_PATH, str(config))
    bare = counted("-c", BARE_PATH, str(free_port()))
    python_only = counted("-c", "pass")
    return {
        "instructions_daemon_path": daemon,
        "instructions_bare_aiohttp": bare,
        "instructions_python": python_only,
        "ratio_instructions_vs_bare": round(daemon / bare, 3),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, timeout: float = 20.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"{url} did not become healthy")


async def load_aiohttp(
    url: str,
    total: int,
    concurrency: int,
    path: str = "/health",
    headers: dict[str, str] | None = None,
    *,
    new_connections: bool = False,
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=new_connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        remaining = total

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                async with session.get(url + path) as r:
                    await r.read()
                    assert r.status == 200, (r.status, await r.text())
                latencies.append(time.perf_counter() - t0)

        # warm-up
        for _ in range(200):
            async with session.get(url + path) as r:
                await r.read()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return len(latencies) / elapsed, latencies


def load_wrk(url: str, seconds: int, concurrency: int) -> tuple[float, float, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", url + "/health"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"{p}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
        return float(m.group(1)) * scale

    return rps, pct("50"), pct("99")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


CHAT_BODY = json.dumps(
    {"message": "what do my notes say about sqlite wal mode?", "session_id": "3f2a9c1d",
     "include_memory": True, "model": "builtin"}
).encode()  # fmt: skip


def bench_decode(loops: int = 50_000) -> dict[str, float]:
    """µs per chat body: the route's path (byte-level checks, then the model), and msgspec's
    typed decode alone for reference."""
    import msgspec

    from localresearch.api.base import convert
    from localresearch.api.chat import ChatRequest
    from localresearch.server.requests import parse_json_object

    def route_path() -> None:
        convert(parse_json_object(CHAT_BODY, what="body"), ChatRequest)

    decoder = msgspec.json.Decoder(ChatRequest)
    out: dict[str, float] = {}
    for name, fn in (
        ("decode_validate_us", route_path),
        ("msgspec_only_us", lambda: decoder.decode(CHAT_BODY)),
        ("json_loads_only_us", lambda: json.loads(CHAT_BODY)),  # the machine's pace, same run
    ):
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(loops):
                fn()
            samples.append((time.perf_counter() - t0) / loops * 1e6)
        out[name] = round(statistics.median(samples), 2)
    return out


def bench_imports(runs: int) -> dict[str, float]:
    """Seconds to start Python, import the library and define one model (medians)."""
    snippets = {
        "python": "pass",
        "msgspec": "import msgspec\nclass M(msgspec.Struct):\n    message: str",
        "pydantic": "import pydantic\nclass M(pydantic.BaseModel):\n    message: str",
    }
    out: dict[str, float] = {}
    for name, code in snippets.items():
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", code], capture_output=True)
            times.append(time.perf_counter() - t0)
            if done.returncode != 0:
                break
        else:
            out[f"import_{name}_s"] = round(statistics.median(times), 3)
    return out


def bench_peer_lookup(loops: int = 200) -> dict[str, float | None]:
    """ms per lookup of a loopback peer's uid (once per new connection): the sock_diag query
    the daemon makes, and the /proc/net/tcp read it falls back to."""
    from localresearch.access.local import _proc_uid, peer_uid

    return {
        "peer_lookup_ms": _time_lookup(peer_uid, loops),
        "peer_lookup_proc_ms": _time_lookup(_proc_uid, max(10, loops // 10)),
    }


def _time_lookup(peer_uid: Any, loops: int) -> float | None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        peer, local = conn.getpeername(), conn.getsockname()
        if peer_uid(peer, local) != os.getuid():
            return None
        t0 = time.perf_counter()
        for _ in range(loops):
            peer_uid(peer, local)
        elapsed = (time.perf_counter() - t0) / loops * 1000
        conn.close()
        client.close()
    return round(elapsed, 3)


def bench_access(research: list[str], args: argparse.Namespace) -> dict[str, object]:
    """GET /api/status on three daemons, interleaved: the owner without credentials (peer
    check, kept-alive connections), a key with a rate limit counted on every request, and
    new connections with and without the peer check (open_local)."""
    key = "bench-key-0123456789abcdef0123"
    variants = {
        "owner": {},
        "keyed": {"LOCALRESEARCH_API__API_KEY": key, "LOCALRESEARCH_API__RATE_LIMIT": "1000000000"},
        "open": {"LOCALRESEARCH_API__OPEN_LOCAL": "true"},
    }
    daemons: dict[str, tuple[str, dict[str, str], str]] = {}
    try:
        for name, extra in variants.items():
            home, port = tempfile.mkdtemp(prefix="lr-bench-"), free_port()
            env = dict(os.environ, LOCALRESEARCH_HOME=home, LOCALRESEARCH_SERVER__PORT=str(port),
                       LOCALRESEARCH_HEARTBEAT__ENABLED="false", **extra)  # fmt: skip
            subprocess.run([*research, "daemon", "start"], env=env, check=True, capture_output=True)
            daemons[name] = (f"http://127.0.0.1:{port}", env, home)
        loads = {
            "status_owner": ("owner", None, False),
            "status_keyed_limited": ("keyed", {"Authorization": f"Bearer {key}"}, False),
            "status_new_conn_peer_check": ("owner", None, True),
            "status_new_conn_open": ("open", None, True),
        }
        rounds: dict[str, list[float]] = {name: [] for name in loads}
        total = max(2000, args.requests // 4)
        for _ in range(args.rounds):
            for name, (daemon, headers, new) in loads.items():
                rps, _lat = asyncio.run(
                    load_aiohttp(daemons[daemon][0], total, args.concurrency, "/api/status",
                                 headers, new_connections=new)
                )  # fmt: skip
                rounds[name].append(rps)
        out: dict[str, object] = {
            f"{n}_rps": round(statistics.median(v)) for n, v in rounds.items()
        }
        out["ratio_keyed_vs_owner"] = round(
            statistics.median(rounds["status_keyed_limited"])
            / statistics.median(rounds["status_owner"]),
            3,
        )
        out["ratio_peer_check_vs_open_new_conn"] = round(
            statistics.median(rounds["status_new_conn_peer_check"])
            / statistics.median(rounds["status_new_conn_open"]),
            3,
        )
        return out
    finally:
        for _url, env, home in daemons.values():
            subprocess.run([*research, "daemon", "stop"], env=env, capture_output=True)
            shutil.rmtree(home, ignore_errors=True)


def installed_research(source: Path, workdir: Path) -> tuple[list[str], str]:
    """`research` and its python from a wheel of `source` in a fresh venv (no editable finder,
    as after `pip install localresearch`); dependencies come from this interpreter's site."""
    import sysconfig

    tree = workdir / "src"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (source / name).exists():
            shutil.copy2(source / name, tree / name)
    shutil.copytree(source / "localresearch", tree / "localresearch",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    wheels = workdir / "wheels"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(tree)], check=True)
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    wheel = next(wheels.glob("localresearch-*.whl"))
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], check=True)
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    site = done.stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "localresearch_bench_deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    return [str(venv / "bin" / "research")], str(python)


def time_start(research: list[str], env: dict[str, str], url: str) -> tuple[float, float]:
    """Seconds from running `research daemon start` to the first /health 200 (polled as for
    the bare app), and to the command's return (it waits for /health itself)."""
    import urllib.request

    t0 = time.perf_counter()
    proc = subprocess.Popen([*research, "daemon", "start"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    first = None
    while first is None and time.perf_counter() - t0 < 30:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    first = time.perf_counter() - t0
        except OSError:
            time.sleep(0.005)
    if proc.wait() != 0 or first is None:
        raise RuntimeError("the daemon did not start")
    return first, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5, help="repeats for timing medians")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved load rounds")
    parser.add_argument("--seconds", type=int, default=3, help="length of one wrk round")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--start-only", action="store_true", help="only start-to-healthy and --help timings"
    )
    parser.add_argument("--no-access", action="store_true", help="skip the /api/status loads")
    parser.add_argument("--instructions", action="store_true",
                        help="only count start-up's instructions under valgrind")  # fmt: skip
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the checkout to build the measured wheel from")  # fmt: skip
    parser.add_argument("--editable", action="store_true",
                        help="measure this environment's `research` (no wheel)")  # fmt: skip
    args = parser.parse_args()

    results: dict[str, object] = {}
    home = tempfile.mkdtemp(prefix="lr-bench-")
    port = free_port()
    env = dict(
        os.environ,
        LOCALRESEARCH_HOME=home,
        LOCALRESEARCH_SERVER__PORT=str(port),
        LOCALRESEARCH_HEARTBEAT__ENABLED="false",
    )
    script = Path(sys.executable).with_name("research")
    research = [str(script)] if script.exists() else [sys.executable, "-m", "localresearch"]
    python = sys.executable
    if not args.editable:
        wheel_dir = Path(tempfile.mkdtemp(prefix="lr-wheel-"))
        atexit.register(shutil.rmtree, wheel_dir, True)
        research, python = installed_research(args.source, wheel_dir)
    results["install"] = "editable" if args.editable else f"wheel of {args.source}"
    if args.instructions:
        results.update(count_instructions(python, env))
        print(json.dumps(results, indent=2))
        return
    results["load_before"] = os.getloadavg()[0]

    # Start-to-healthy: the first /health 200 after running `research daemon start` (which
    # itself returns once /health answers). Baseline: the bare aiohttp app's own process
    # start-to-healthy, interleaved with it.
    firsts, starts, bare_starts = [], [], []
    for _ in range(args.runs):
        first, returned = time_start(research, env, f"http://127.0.0.1:{port}")
        firsts.append(first)
        starts.append(returned)
        subprocess.run([*research, "daemon", "stop"], env=env, check=True, capture_output=True)
        bport = free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bport)])
        wait_healthy(f"http://127.0.0.1:{bport}")
        bare_starts.append(time.perf_counter() - t0)
        proc.terminate()
        proc.wait()
    results["start_to_healthy_s"] = round(statistics.median(firsts), 3)
    results["start_command_s"] = round(statistics.median(starts), 3)
    results["bare_aiohttp_start_to_healthy_s"] = round(statistics.median(bare_starts), 3)
    results["ratio_start_vs_bare"] = round(
        statistics.median(firsts) / statistics.median(bare_starts), 3
    )

    # research --help against bare interpreter start-up.
    helps, bare = [], []
    for _ in range(max(args.runs, 10)):
        t0 = time.perf_counter()
        subprocess.run([*research, "--help"], env=env, check=True, capture_output=True)
        helps.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True, capture_output=True)
        bare.append(time.perf_counter() - t0)
    results["help_s"] = round(statistics.median(helps), 3)
    results["python_startup_s"] = round(statistics.median(bare), 3)
    results["help_minus_python_s"] = round(results["help_s"] - results["python_startup_s"], 3)  # type: ignore[operator]
    results.update(bench_decode())
    results.update(bench_imports(max(args.runs, 7)))
    results.update(bench_peer_lookup())

    if args.start_only:
        results["load_after"] = os.getloadavg()[0]
        print(json.dumps(results, indent=2))
        return
    if not args.no_access:
        results.update(bench_access(research, args))
    # Throughput and latency: daemon vs bare aiohttp, same client, same machine.
    subprocess.run([*research, "daemon", "start"], env=env, check=True, capture_output=True)
    bport = free_port()
    bare_proc = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bport)])
    try:
        wait_healthy(f"http://127.0.0.1:{bport}")
        targets = {"daemon": f"http://127.0.0.1:{port}", "bare": f"http://127.0.0.1:{bport}"}
        use_wrk = shutil.which("wrk") is not None
        results["client"] = "wrk" if use_wrk else "aiohttp"
        # Interleaved rounds (daemon, bare, daemon, bare, ...): a load change on the machine hits
        # both alike; each figure is the median over the rounds.
        rounds: dict[str, list[tuple[float, float, float]]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, url in targets.items():
                if use_wrk:
                    rounds[name].append(load_wrk(url, args.seconds, args.concurrency))
                else:
                    rps, lat = asyncio.run(load_aiohttp(url, args.requests, args.concurrency))
                    p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
                    rounds[name].append((rps, p50, p99))
        for name, runs in rounds.items():
            results[f"{name}_rps"] = round(statistics.median(r[0] for r in runs))
            results[f"{name}_p50_ms"] = round(statistics.median(r[1] for r in runs), 3)
            results[f"{name}_p99_ms"] = round(statistics.median(r[2] for r in runs), 3)
        results["ratio_rps"] = round(results["daemon_rps"] / results["bare_rps"], 3)  # type: ignore[operator]
    finally:
        bare_proc.terminate()
        bare_proc.wait()
        subprocess.run([*research, "daemon", "stop"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)

    if args.json:
        print(json.dumps(results, indent=2))
        return
    r = results
    print(f"client: {r['client']}, concurrency {args.concurrency}")
    for name in ("daemon", "bare"):
        print(
            f"GET /health {name:6}: {r[f'{name}_rps']} req/s, "
            f"p50 {r[f'{name}_p50_ms']} ms, p99 {r[f'{name}_p99_ms']} ms"
        )
    print(f"ratio daemon/bare : {r['ratio_rps']} (target >= 0.9)")
    print(
        f"start-to-healthy  : {r['start_to_healthy_s']} s to the first /health 200, "
        f"`daemon start` returns at {r['start_command_s']} s (bare aiohttp "
        f"{r['bare_aiohttp_start_to_healthy_s']} s, ratio {r['ratio_start_vs_bare']}; "
        "target <= 0.5 s)"
    )
    print(
        f"research --help   : {r['help_s']} s ({r['install']}; python start-up "
        f"{r['python_startup_s']} s; target <= 0.1)"
    )
    print(
        f"chat body decode  : {r['decode_validate_us']} µs (checks + model; target <= 20), "
        f"msgspec decode alone {r['msgspec_only_us']} µs, json.loads alone "
        f"{r['json_loads_only_us']} µs"
    )
    print(
        f"import + 1 model  : msgspec {r.get('import_msgspec_s')} s, pydantic "
        f"{r.get('import_pydantic_s', 'n/a')} s (python alone {r.get('import_python_s')} s)"
    )
    print(
        f"peer uid lookup   : {r['peer_lookup_ms']} ms per new connection (sock_diag), "
        f"/proc/net/tcp {r['peer_lookup_proc_ms']} ms"
    )
    if "ratio_keyed_vs_owner" in r:
        print(
            f"GET /api/status   : owner {r['status_owner_rps']} req/s, key + rate limit "
            f"{r['status_keyed_limited_rps']} req/s, ratio {r['ratio_keyed_vs_owner']} "
            "(target >= 0.85)"
        )
        print(
            f"new connections   : peer check {r['status_new_conn_peer_check_rps']} req/s, "
            f"open_local {r['status_new_conn_open_rps']} req/s, "
            f"ratio {r['ratio_peer_check_vs_open_new_conn']}"
        )


if __name__ == "__main__":
    main()
