"""Soak: mixed chat / search / SSE / WebSocket load on a real daemon, SIGKILLed and restarted
periodically. Checks that no acknowledged write is lost across the kills, that the daemon's
memory does not grow after warm-up, and reports /health latency under load against the same
daemon idle (measured in this run, before the load).

    python scripts/bench_soak.py [--minutes 10] [--kills 4] [--kill-every 75] [--warmup 120]

Acknowledged writes: a session answered 201, a chat exchange answered 200 (its two messages),
a research job answered with its id. After the run every one of them must be readable.
RSS is sampled every --sample-every seconds of each daemon life; growth is measured from the
end of warm-up (--warmup seconds into a life: thread pools, SQLite page caches and the
allocator's arenas fill) to the life's end. The first --kills lives end in a SIGKILL after
--kill-every seconds; the last runs to the end of the soak, long enough to be measured: its
growth is the result (target < 10%).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

WORDS = [
    *[
        "sqlite",
        "wal",
        "checkpoint",
        "index",
        "vector",
        "search",
        "memory",
        "daemon",
        "report",
        "source",
    ],
    *[
        "citation",
        "heartbeat",
        "schedule",
        "model",
        "stream",
        "socket",
        "cancel",
        "query",
        "chunk",
        "note",
        "folder",
    ],
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Ledger:
    sessions: dict[str, int] = field(default_factory=dict)  # id -> acknowledged messages
    jobs: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    health_ms: list[float] = field(default_factory=list)
    health_failed: int = 0

    def count(self, what: str, ok: bool = True) -> None:
        table = self.counts if ok else self.failures
        table[what] = table.get(what, 0) + 1


class Daemon:
    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALRESEARCH_")}
        self.env.update(
            LOCALRESEARCH_HOME=str(home),
            LOCALRESEARCH_SERVER__PORT=str(self.port),
            LOCALRESEARCH_HEARTBEAT__ENABLED="false",
        )
        self.env.update(extra_env or {})
        self.home = home
        self.url = f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "localresearch", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self) -> float:
        began = time.monotonic()
        result = self.cli("daemon", "start")
        if result.returncode != 0:
            raise SystemExit(f"daemon did not start: {result.stderr}")
        return time.monotonic() - began

    def pid(self) -> int:
        return int(json.loads((self.home / "state" / "daemon.pid").read_text())["pid"])


def _text(n: int) -> str:
    rng = random.Random(n)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))


async def chat_worker(session: aiohttp.ClientSession, url: str, ledger: Ledger, n: int) -> None:
    sid: str | None = None
    while True:
        try:
            if sid is None or random.random() < 0.1:
                async with session.post(f"{url}/api/sessions", json={"title": f"soak {n}"}) as r:
                    if r.status == 201:
                        sid = str((await r.json())["id"])
                        ledger.sessions[sid] = 0
                        ledger.count("session")
                    else:
                        ledger.count("session", ok=False)
                        await asyncio.sleep(0.2)
                        continue
            body = {"message": _text(random.randrange(10**6)), "session_id": sid}
            async with session.post(f"{url}/api/chat", json=body) as r:
                if r.status == 200:
                    await r.read()
                    ledger.sessions[sid] += 2  # the question and the answer
                    ledger.count("chat")
                else:
                    ledger.count("chat", ok=False)
        except (aiohttp.ClientError, TimeoutError, KeyError):
            ledger.count("chat", ok=False)
            await asyncio.sleep(0.2)


async def search_worker(session: aiohttp.ClientSession, url: str, ledger: Ledger) -> None:
    while True:
        try:
            params = {"q": _text(random.randrange(10**6)), "limit": "5"}
            async with session.get(f"{url}/api/memory/search", params=params) as r:
                await r.read()
                ledger.count("search", r.status == 200)
        except (aiohttp.ClientError, TimeoutError):
            ledger.count("search", ok=False)
            await asyncio.sleep(0.2)


async def sse_worker(session: aiohttp.ClientSession, url: str, ledger: Ledger) -> None:
    while True:
        try:
            body = {"query": _text(random.randrange(10**6)), "dimensions": 3, "rounds": 0}
            async with session.post(f"{url}/api/research/deep", json=body) as r:
                if r.status != 200:
                    ledger.count("job", ok=False)
                    await asyncio.sleep(0.5)
                    continue
                job = str((await r.json())["researchId"])
                ledger.jobs.append(job)
                ledger.count("job")
            async with session.get(f"{url}/api/research/deep/{job}") as r:
                async for line in r.content:
                    if line.startswith(b"data:") and b'"done"' in line:
                        break
                ledger.count("sse")
        except (aiohttp.ClientError, TimeoutError):
            ledger.count("sse", ok=False)
            await asyncio.sleep(0.5)


async def ws_worker(session: aiohttp.ClientSession, url: str, ledger: Ledger) -> None:
    while True:
        try:
            async with session.ws_connect(f"{url}/api/ws") as ws:
                while True:
                    await ws.send_json({"type": "chat", "message": _text(random.randrange(99))})
                    if random.random() < 0.2:
                        await ws.send_json({"type": "cancel"})
                    while True:
                        message = await ws.receive(timeout=30)
                        if message.type != aiohttp.WSMsgType.TEXT:
                            raise aiohttp.ClientError("socket closed")
                        if json.loads(message.data)["type"] in ("done", "error"):
                            break
                    ledger.count("ws")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            ledger.count("ws", ok=False)
            await asyncio.sleep(0.5)


async def health_sampler(
    session: aiohttp.ClientSession, url: str, samples: list[float], ledger: Ledger | None
) -> None:
    while True:
        began = time.perf_counter()
        try:
            async with session.get(f"{url}/health") as r:
                await r.read()
                ok = r.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            samples.append((time.perf_counter() - began) * 1000)
        elif ledger is not None:
            ledger.health_failed += 1
        await asyncio.sleep(0.05)


def _life(curve: list[tuple[float, float]], warmup: float) -> dict[str, Any]:
    """One daemon life's RSS: its curve, and growth from the end of warm-up to the life's end
    (None for a life that ended before its warm-up did)."""
    warm = next((mb for t, mb in curve if t >= warmup), None)
    last = curve[-1][1]
    measured = warm is not None and curve[-1][0] - warmup >= 30
    return {
        "seconds": curve[-1][0],
        "start_mb": curve[0][1],
        "warm_mb": warm,
        "end_mb": last,
        "peak_mb": max(mb for _, mb in curve),
        "growth": round(last / warm - 1, 3) if measured and warm else None,
        "curve_mb": [mb for _, mb in curve],
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def soak(args: argparse.Namespace, daemon: Daemon) -> dict[str, Any]:
    ledger = Ledger()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        # Same-run baseline: /health of this daemon, idle.
        idle: list[float] = []
        sampler = asyncio.create_task(health_sampler(session, daemon.url, idle, None))
        await asyncio.sleep(args.baseline)
        sampler.cancel()
        load = [
            *(asyncio.create_task(chat_worker(session, daemon.url, ledger, n)) for n in range(3)),
            asyncio.create_task(search_worker(session, daemon.url, ledger)),
            asyncio.create_task(sse_worker(session, daemon.url, ledger)),
            asyncio.create_task(ws_worker(session, daemon.url, ledger)),
            asyncio.create_task(health_sampler(session, daemon.url, ledger.health_ms, ledger)),
        ]
        lives: list[dict[str, Any]] = []
        restarts: list[float] = []
        began = time.monotonic()
        end = began + args.minutes * 60
        try:
            while True:
                # The first --kills lives last --kill-every seconds; the last one runs to the end,
                # so it is the one long enough to be measured after its warm-up.
                last_life = len(restarts) >= args.kills
                life_start = time.monotonic()
                life_end = end if last_life else min(end, life_start + args.kill_every)
                process = psutil.Process(daemon.pid())
                curve: list[tuple[float, float]] = []  # (seconds into the life, RSS MB)
                next_sample = life_start
                while True:
                    now = time.monotonic()
                    if now >= next_sample or now >= life_end:
                        rss = process.memory_info().rss / 2**20
                        curve.append((round(now - life_start), round(rss, 1)))
                        next_sample += args.sample_every
                        if args.memory_dump >= 0 and now - life_start >= args.warmup:
                            process.send_signal(signal.SIGUSR1)  # the first: the baseline
                    if now >= life_end:
                        break
                    await asyncio.sleep(min(1.0, max(0.0, life_end - now)))
                lives.append(_life(curve, args.warmup))
                if time.monotonic() >= end:
                    break
                os.kill(process.pid, signal.SIGKILL)
                process.wait(10)
                restarts.append(await asyncio.to_thread(daemon.start))
        finally:
            for task in load:
                task.cancel()
            for task in load:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        lost_sessions, lost_messages, lost_jobs = 0, 0, 0
        slow = aiohttp.ClientTimeout(total=300)  # checking is not measured
        for sid, acknowledged in ledger.sessions.items():
            async with session.get(f"{daemon.url}/api/sessions/{sid}", timeout=slow) as r:
                if r.status != 200:
                    lost_sessions += 1
                    lost_messages += acknowledged
                    continue
                stored = len((await r.json())["messages"])
                lost_messages += max(0, acknowledged - stored)
        for job in ledger.jobs:
            status = f"{daemon.url}/api/research/deep/{job}/status"
            async with session.get(status, timeout=slow) as r:
                lost_jobs += r.status != 200
    return {
        "minutes": args.minutes,
        "kills": len(restarts),
        "restart_s_median": round(statistics.median(restarts), 2) if restarts else None,
        "ok": ledger.counts,
        "failed_during_kills": ledger.failures,
        "acknowledged": {"sessions": len(ledger.sessions),
                         "messages": sum(ledger.sessions.values()), "jobs": len(ledger.jobs)},
        "lost": {"sessions": lost_sessions, "messages": lost_messages, "jobs": lost_jobs},
        "health_idle_ms": {"p50": round(pct(idle, 0.5), 2), "p99": round(pct(idle, 0.99), 2),
                           "n": len(idle)},
        "health_load_ms": {"p50": round(pct(ledger.health_ms, 0.5), 2),
                           "p99": round(pct(ledger.health_ms, 0.99), 2),
                           "n": len(ledger.health_ms), "failed": ledger.health_failed},
        "rss_lives": lives,
        "rss_growth_after_warmup": lives[-1]["growth"] if lives else None,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--kills", type=int, default=4, help="SIGKILLs (the last life runs on)")
    parser.add_argument(
        "--kill-every", type=float, default=75.0, help="seconds per daemon life before each kill"
    )
    parser.add_argument(
        "--warmup", type=float, default=120.0, help="seconds into a life before its RSS baseline"
    )
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of idle /health")
    parser.add_argument("--notes", type=int, default=300)
    parser.add_argument("--sample-every", type=float, default=30.0, help="seconds per RSS sample")
    parser.add_argument(
        "--memory-dump",
        type=int,
        default=-1,
        metavar="FRAMES",
        help="dump RSS and glibc's heap to state/memory.txt at each sample "
        "(see --keep-home); FRAMES >= 1 also traces the Python heap",
    )
    parser.add_argument(
        "--malloc-arena-max",
        type=int,
        default=0,
        help="MALLOC_ARENA_MAX for the daemon (0: glibc's default)",
    )
    parser.add_argument(
        "--daemon-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set in the daemon's environment (e.g. LOCALRESEARCH_MALLOC_TRIM_S=0)",
    )
    parser.add_argument("--keep-home", default="", help="copy the daemon's state/ here after")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lr-soak-") as tmp:
        home = Path(tmp)
        notes = home / "data" / "workspace" / "notes"
        notes.mkdir(parents=True)
        for n in range(args.notes):
            paragraphs = "\n\n".join(_text(n * 100 + p) + "." for p in range(12))
            (notes / f"note-{n}.md").write_text(f"# Note {n}\n\n{paragraphs}\n")
        extra = {}
        if args.memory_dump >= 0:
            extra["LOCALRESEARCH_MEMORY_DUMP"] = str(args.memory_dump)
        extra.update(item.split("=", 1) for item in args.daemon_env)  # type: ignore[misc]
        if args.malloc_arena_max:
            extra["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
        daemon = Daemon(home, extra)
        daemon.start()
        try:
            result = asyncio.run(soak(args, daemon))
        finally:
            daemon.cli("daemon", "stop")
            if args.keep_home:
                shutil.copytree(home / "state", args.keep_home, dirs_exist_ok=True)
    print(json.dumps(result, indent=2))
    lost = sum(result["lost"].values())
    growth = result["rss_growth_after_warmup"]
    return 0 if lost == 0 and (growth is None or growth < 0.10) else 1


if __name__ == "__main__":
    sys.exit(main())
