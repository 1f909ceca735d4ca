"""Security and robustness probe: replays the hostile requests and faults of the hardening audit
against a real daemon in a throw-away home and checks each is now handled. Exit 1 if any fails.

    python scripts/probe_security.py [--verbose]

Each check prints PASS or FAIL with what was seen. The daemon runs on a free port with its own
LOCALRESEARCH_HOME; fake providers (echoing keys in their errors) run on loopback here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

RESULTS: list[tuple[str, bool, str]] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    """A daemon process in its own home, driven through the CLI like a user would."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALRESEARCH_")}
        self.env.update(
            LOCALRESEARCH_HOME=str(home),
            LOCALRESEARCH_SERVER__PORT=str(self.port),
            LOCALRESEARCH_SERVER__SHUTDOWN_TIMEOUT="5",
            LOCALRESEARCH_SERVER__IDLE_TIMEOUT="2",
            LOCALRESEARCH_HEARTBEAT__ENABLED="false",
            **(extra_env or {}),
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "localresearch", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "localresearch", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def start(self) -> None:
        result = self.cli("daemon", "start")
        if result.returncode != 0:
            raise RuntimeError(f"daemon did not start: {result.stderr}")

    def stop(self) -> None:
        self.cli("daemon", "stop")

    def pid(self) -> int | None:
        try:
            return int(json.loads((self.home / "state" / "daemon.pid").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    def http(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, bytes]:
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read()

    def raw(self, data: bytes, timeout: float = 10) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(data)
            received = b""
            while True:
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    break
                if not chunk:
                    break
                received += chunk
        return received


def check(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Record a check: it passes unless it raises (AssertionError says what was seen)."""

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        def run(*args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:  # a probe reports, it does not stop
                detail = str(exc) or traceback.format_exc(limit=2)
                RESULTS.append((name, False, detail[:400]))
                print(f"FAIL  {name}: {detail[:400]}", flush=True)
            else:
                RESULTS.append((name, True, ""))
                print(f"PASS  {name}", flush=True)

        return run

    return wrap


def envelope(status: int, kind: str, body: bytes, want: int) -> dict[str, Any]:
    assert status == want, f"HTTP {status} (wanted {want}): {body[:200]!r}"
    assert kind.startswith("application/json"), f"content type {kind!r}: {body[:200]!r}"
    data = json.loads(body)
    assert set(data) == {"error"} and set(data["error"]) == {"code", "message"}, data
    return dict(data["error"])


def raw_envelope(raw: bytes, want: int) -> dict[str, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    kind = ""
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-type:"):
            kind = line.split(b":", 1)[1].strip().decode()
    return envelope(status, kind, body, want)


# -- 2. keys echoed by providers ------------------------------------------------------------


class LeakyProvider:
    """Refuses every key and quotes it back in its error body (OpenAI and Tavily shapes)."""

    def __init__(self) -> None:
        self.url = ""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _refuse(self, request: web.Request) -> web.Response:
        await request.read()
        seen = request.headers.get("Authorization", "none")
        bare = seen.removeprefix("Bearer ")
        if request.path.startswith("/v1/"):
            message = f"Incorrect API key provided: {seen}. Your key {bare} is wrong."
            return web.json_response({"error": {"message": message}}, status=401)
        return web.json_response({"detail": {"error": f"Unauthorized: {seen} {bare}"}}, status=401)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._refuse)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    def start(self) -> str:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self.url


@check("2. keys echoed by embeddings and web search never leave the daemon")
def keys_never_leak(base: Path) -> None:
    leaky = LeakyProvider()
    url = leaky.start()
    keys = {
        "PROBE_EMBED_KEY": "Ek" + secrets.token_hex(16),
        "PROBE_SEARCH_KEY": "Sk" + secrets.token_hex(16),
    }
    home = Path(tempfile.mkdtemp(dir=base))
    daemon = Daemon(
        home,
        {
            **keys,
            "LOCALRESEARCH_MEMORY__EMBEDDINGS__PROVIDER": "openai",
            "LOCALRESEARCH_MEMORY__EMBEDDINGS__MODEL": "probe",
            "LOCALRESEARCH_MEMORY__EMBEDDINGS__BASE_URL": f"{url}/v1",
            "LOCALRESEARCH_MEMORY__EMBEDDINGS__API_KEY_ENV": "PROBE_EMBED_KEY",
            "LOCALRESEARCH_RESEARCH__WEB_SEARCH": "tavily",
            "LOCALRESEARCH_RESEARCH__WEB_SEARCH_URL": url,
            "LOCALRESEARCH_RESEARCH__WEB_SEARCH_KEY_ENV": "PROBE_SEARCH_KEY",
        },
    )
    (home / "data" / "workspace").mkdir(parents=True)
    (home / "data" / "workspace" / "b12.md").write_text("# B12\n\nB12 lowers homocysteine.\n")
    daemon.start()
    said = b""
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            _, _, body = daemon.http("GET", "/api/memory/stats")
            said += body
            if json.loads(body).get("embeddings", {}).get("error"):
                break
            time.sleep(0.2)
        body_json = json.dumps({"query": "B12 and homocysteine?"}).encode()
        _, _, body = daemon.http(
            "POST", "/api/research/deep", body_json, {"Content-Type": "application/json"}
        )
        job = json.loads(body)["researchId"]
        for _ in range(200):
            _, _, status = daemon.http("GET", f"/api/research/deep/{job}/status")
            if json.loads(status)["status"] != "running":
                break
            time.sleep(0.1)
        said += status + daemon.http("GET", f"/api/research/deep/{job}")[2]
    finally:
        daemon.stop()
    written = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert b"401" in said, "the providers were not reached"
    for name, key in keys.items():
        assert key.encode() not in said, f"{name} in a response"
        assert key.encode() not in written, f"{name} in a file the daemon wrote"


# -- 4 and 5. input ------------------------------------------------------------------------

BODY_ENDPOINTS = [
    "/api/chat",
    "/api/chat/stream",
    "/api/memory/sources",
    "/api/research/deep",
    "/api/sessions",
    "/api/schedules",
    "/api/memory/search",
]


def input_checks(daemon: Daemon) -> None:
    json_type = {"Content-Type": "application/json"}

    @check("4. a UTF-16 body with \\u0000 is refused (400), nothing stored")
    def utf16() -> None:
        body = json.dumps({"message": "a\u0000b"}).encode("utf-16")
        envelope(*daemon.http("POST", "/api/chat", body, json_type), want=400)

    @check("4. raw surrogate bytes in a body are a 400, not a 500")
    def surrogates() -> None:
        body = b'{"message": "\xed\xa0\x80"}'
        envelope(*daemon.http("POST", "/api/chat", body, json_type), want=400)

    @check("4. ?q=a%00b is a 400")
    def nul_query() -> None:
        envelope(*daemon.http("GET", "/api/memory/search?q=a%00b"), want=400)

    @check("5. a 4,300-digit integer is a 400 on every body endpoint")
    def huge_int() -> None:
        body = b'{"message": "x", "query": "x", "path": "/tmp", "n": ' + b"7" * 4400 + b"}"
        for path in BODY_ENDPOINTS:
            error = envelope(*daemon.http("POST", path, body, json_type), want=400)
            assert "digits" in error["message"], (path, error)

    @check("5. a huge integer on the WebSocket is an error event, not HTTP/1.1 500")
    def ws_huge_int() -> None:
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{daemon.port}/api/ws", open_timeout=10) as ws:
            ws.send('{"type": "chat", "message": "x", "n": ' + "5" * 4400 + "}")
            event = json.loads(ws.recv(timeout=10))
            assert event["type"] == "error" and "digits" in event["data"]["message"], event

    @check("5. Last-Event-ID 9223372036854775808 is a 400 before the stream opens")
    def last_event_id() -> None:
        body = json.dumps({"query": "vitamin b12"}).encode()
        job = json.loads(daemon.http("POST", "/api/research/deep", body, json_type)[2])
        headers = {"Last-Event-ID": "9223372036854775808"}
        status, kind, raw = daemon.http(
            "GET", f"/api/research/deep/{job['researchId']}", None, headers
        )
        assert b"HTTP/1.1" not in raw
        envelope(status, kind, raw, want=400)

    @check("5. a source path over 255 characters is a 400 naming 'path'")
    def long_path() -> None:
        body = json.dumps({"path": "/tmp/" + "a" * 300}).encode()
        error = envelope(*daemon.http("POST", "/api/memory/sources", body, json_type), want=400)
        assert "path" in error["message"], error

    host = f"Host: 127.0.0.1:{daemon.port}\r\n".encode()

    @check("5. a URL over 8,190 bytes is a 414 in the envelope")
    def long_url() -> None:
        request = b"GET /api/memory/search?q=" + b"a" * 9000 + b" HTTP/1.1\r\n" + host + b"\r\n"
        raw_envelope(daemon.raw(request), want=414)

    @check("5. a malformed method is a 400 in the envelope")
    def bad_method() -> None:
        raw_envelope(daemon.raw(b"G(T / HTTP/1.1\r\n" + host + b"\r\n"), want=400)

    @check("5. a malformed request (broken chunking) is a 400 in the envelope")
    def malformed() -> None:
        request = b"POST /api/chat HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
        request += b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
        raw_envelope(daemon.raw(request), want=400)

    @check("5. the CLI sends a long memory search by POST")
    def long_search() -> None:
        result = daemon.cli("memory", "search", "homocysteine " * 800, "--json")
        assert result.returncode == 0, result.stderr[-300:]
        assert "Got more than" not in result.stdout + result.stderr

    @check("7. a slow-header (slowloris) connection is closed after server.idle_timeout")
    def slowloris() -> None:
        sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        began = time.monotonic()
        closed = False
        while time.monotonic() - began < 8 and not closed:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                time.sleep(0.5)
                closed = sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
            except BlockingIOError:
                continue
            except OSError:
                closed = True
        sock.close()
        assert closed, "still open after 8 s"

    @check("9. WebSocket cancel right after chat always gets a final event (45 tries)")
    def ws_cancel() -> None:
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{daemon.port}/api/ws", open_timeout=10) as ws:
            for _ in range(45):
                ws.send('{"type": "chat", "message": "what is in my notes?"}')
                ws.send('{"type": "cancel"}')
                event: dict[str, Any] = {}
                while event.get("type") not in ("done", "error"):
                    event = json.loads(ws.recv(timeout=10))

    for probe in (utf16, surrogates, nul_query, huge_int, ws_huge_int, last_event_id, long_path,
                  long_url, bad_method, malformed, long_search, slowloris, ws_cancel):  # fmt: skip
        probe()
    _, _, health = daemon.http("GET", "/health")
    assert json.loads(health)["status"] == "ok"


# -- 6. one daemon per home ------------------------------------------------------------------


@check("6. four concurrent 'daemon start' bring up one daemon")
def concurrent_starts(base: Path) -> None:
    daemon = Daemon(Path(tempfile.mkdtemp(dir=base)))
    try:
        starters = [daemon.spawn("daemon", "start", "--json") for _ in range(4)]
        outputs = [p.communicate(timeout=60) for p in starters]
        assert all(p.returncode == 0 for p in starters), outputs
        pids = {json.loads(out)["pid"] for out, _ in outputs}
        assert len(pids) == 1, pids
    finally:
        daemon.stop()


@check("6. three cold 'research ask' at once all answer")
def cold_asks(base: Path) -> None:
    daemon = Daemon(Path(tempfile.mkdtemp(dir=base)))
    try:
        asks = [daemon.spawn("ask", "--no-memory", f"hello {n}") for n in range(3)]
        outputs = [p.communicate(timeout=90) for p in asks]
        assert all(p.returncode == 0 for p in asks), [err[-200:] for _, err in outputs]
    finally:
        daemon.stop()


@check("6. 'daemon stop' never kills a process named by a pid file without create_time")
def stop_identity(base: Path) -> None:
    daemon = Daemon(Path(tempfile.mkdtemp(dir=base)))
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid_file = daemon.home / "state" / "daemon.pid"
        pid_file.parent.mkdir(parents=True)
        pid_file.write_text(json.dumps({"pid": bystander.pid, "url": daemon.url}))
        daemon.cli("daemon", "stop")
        time.sleep(0.3)
        assert bystander.poll() is None, "the bystander was killed"
    finally:
        bystander.kill()
        bystander.wait()


# -- 8. faults -------------------------------------------------------------------------------


@check("8. a Latin-1 byte in config.toml: config error with file:line, exit 2, stop works")
def latin1_config(base: Path) -> None:
    daemon = Daemon(Path(tempfile.mkdtemp(dir=base)))
    daemon.start()
    try:
        config = daemon.home / "config.toml"
        config.write_bytes(b"[server]\n# caf\xe9\n")
        result = daemon.cli("config", "check")
        assert result.returncode == 2, result.returncode
        assert f"{config}:2" in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        pid = daemon.pid()
        stop = daemon.cli("daemon", "stop")
        assert stop.returncode == 0 and "Traceback" not in stop.stderr, stop.stderr
        assert pid is not None
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("daemon still running")
    finally:
        daemon.stop()


@check("8. a database deleted under the daemon: writes refused with 503, none acknowledged")
def deleted_database(base: Path) -> None:
    daemon = Daemon(Path(tempfile.mkdtemp(dir=base)))
    daemon.start()
    try:
        body = json.dumps({"title": "before"}).encode()
        status, _, _ = daemon.http(
            "POST", "/api/sessions", body, {"Content-Type": "application/json"}
        )
        assert status == 201, status  # the core is up and writing
        database = daemon.home / "data" / "localresearch.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        body = json.dumps({"title": "after"}).encode()
        for _ in range(3):
            error = envelope(
                *daemon.http("POST", "/api/sessions", body, {"Content-Type": "application/json"}),
                want=503,
            )
            assert error["code"] == "unavailable" and "deleted" in error["message"], error
    finally:
        daemon.stop()


@check("7. a SIGKILLed daemon leaves no worker or resource tracker")
def workers_die(base: Path) -> None:
    import psutil

    daemon = Daemon(Path(tempfile.mkdtemp(dir=base)))
    notes = daemon.home / "data" / "workspace" / "pages"
    notes.mkdir(parents=True)
    cell = "<td><span class='x'><b>cell</b> <i>text</i></span></td>"
    for n in range(600):
        rows = "".join(f"<tr>{cell * 8}</tr><p>Paragraph {p} of page {n}.</p>" for p in range(150))
        (notes / f"page-{n}.html").write_text(f"<html><body>{rows}</body></html>")
    daemon.start()
    pid = daemon.pid()
    assert pid is not None
    children: list[Any] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(children) < 2:
        children = psutil.Process(pid).children(recursive=True)
        time.sleep(0.05)
    if len(children) < 2:
        daemon.stop()
        print("      (indexing finished before workers were seen; nothing to check)")
        return
    os.kill(pid, signal.SIGKILL)
    _, alive = psutil.wait_procs(children, timeout=10)
    for process in alive:
        process.kill()
    assert not alive, f"{len(alive)} processes left"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lr-probe-") as tmp:
        base = Path(tmp)
        keys_never_leak(base)
        daemon = Daemon(Path(tempfile.mkdtemp(dir=base)))
        daemon.start()
        try:
            input_checks(daemon)
        finally:
            daemon.stop()
        concurrent_starts(base)
        cold_asks(base)
        stop_identity(base)
        latin1_config(base)
        deleted_database(base)
        workers_die(base)
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)} of {len(RESULTS)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
