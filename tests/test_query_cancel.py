"""Background queries against a real daemon whose model is a local server speaking the OpenAI
chat-completions stream: canceling one aborts the model request in flight within a second; a
stalled stream sends keep-alive lines; a query outlives a daemon restart."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.daemon_fixture import DaemonHandle, call_json
from tests.fakes.servers import respond_openai_stream

DIMENSIONS = ["Storage", "Concurrency", "Durability"]


class StallingModel:
    """Answers each research step; a dimension's request stalls while `stall` is set, and the
    moment its client hangs up is recorded."""

    def __init__(self) -> None:
        self.stall = True
        self.hanging = asyncio.Event()
        self.hanging_seen = threading.Event()  # the same moment, for a client in a thread
        self.hung_up_at: float | None = None
        self.calls = 0

    def reply_for(self, prompt: str) -> tuple[str, str]:
        if "research dimensions" in prompt:
            return "scope", json.dumps({"dimensions": DIMENSIONS})
        if "\nDimension: " in prompt:
            dimension = prompt.split("\nDimension: ", 1)[1].split("\n", 1)[0]
            summary = f"{dimension}: SQLite keeps a whole database in one file."
            body = {"summary": summary, "keyFinding": summary,
                    "points": [{"text": summary, "source": 1}]}  # fmt: skip
            return "dimension", json.dumps(body)
        if "still missing" in prompt:
            return "evaluate", json.dumps({"gaps": [], "newDimensions": []})
        return "synthesis", "SQLite keeps a whole database in one file [1].\n"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        kind, text = self.reply_for(body["messages"][-1]["content"])
        self.calls += 1
        if kind == "dimension" and self.stall:
            self.hanging.set()
            self.hanging_seen.set()
            try:
                while self.stall:
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        raise ConnectionResetError("client hung up")
                    await asyncio.sleep(0.01)
            except (ConnectionResetError, asyncio.CancelledError):
                self.hung_up_at = time.monotonic()  # the server cancels a hung-up handler
                raise
        return await respond_openai_stream(request, text)


async def _start(tmp_path: Path, daemon: DaemonHandle, aiohttp_server: Any) -> StallingModel:
    model = StallingModel()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", model.handle)
    server = await aiohttp_server(app)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "sqlite.md").write_text("# SQLite\n\nSQLite keeps a whole database in one file.\n")
    (daemon.home / "config.toml").write_text(
        f"[memory]\npaths = [{json.dumps(str(notes))}]\nwatch = false\n\n"
        "[research]\ndimensions = 3\nmax_rounds = 1\ndimension_concurrency = 1\n\n"
        "[api]\nstream_keepalive = 0.2\n\n"
        f'[llm]\nprovider = "openai"\nbase_url = "http://127.0.0.1:{server.port}"\n'
    )
    await asyncio.to_thread(daemon.start)
    return model


def _metric(port: int, sample: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == sample and found.labels == labels:
                return float(found.value)
    raise AssertionError(f"no {sample} {labels}")


def _open_ndjson(port: int) -> float:
    return _metric(port, "localresearch_open_streams", kind="ndjson")


async def test_cancel_aborts_the_model_request_within_a_second(
    tmp_path: Path, daemon_env: DaemonHandle, aiohttp_server: Any
) -> None:
    model = await _start(tmp_path, daemon_env, aiohttp_server)
    port = daemon_env.port
    try:
        status, accepted = await asyncio.to_thread(
            call_json,
            port,
            "POST",
            "/query/async",
            {"version": "1", "query": "How does SQLite store data?"},
        )
        assert status == 200, accepted
        query_id = accepted["query_id"]
        await asyncio.wait_for(model.hanging.wait(), 30)
        status, state = await asyncio.to_thread(call_json, port, "GET", f"/query/{query_id}")
        assert state == {"query_id": query_id, "status": "running"}

        asked = time.monotonic()
        status, canceled = await asyncio.to_thread(call_json, port, "DELETE", f"/query/{query_id}")
        answered = time.monotonic()
        assert status == 200 and canceled == {"query_id": query_id, "status": "canceled"}
        assert answered - asked < 1.0
        for _ in range(100):  # the model's side sees the hang-up (it polls every 10 ms)
            if model.hung_up_at is not None:
                break
            await asyncio.sleep(0.01)
        assert model.hung_up_at is not None and model.hung_up_at - asked < 1.0

        status, state = await asyncio.to_thread(call_json, port, "GET", f"/query/{query_id}")
        assert state == {"query_id": query_id, "status": "canceled"}
        status, _again = await asyncio.to_thread(call_json, port, "DELETE", f"/query/{query_id}")
        assert status == 404
        calls = model.calls
        await asyncio.sleep(0.5)
        assert model.calls == calls  # nothing more was asked of the model
        status, jobs = await asyncio.to_thread(call_json, port, "GET", "/api/research/deep")
        assert jobs["jobs"][0]["status"] == "cancelled"
    finally:
        model.stall = False
        await asyncio.to_thread(daemon_env.stop)


async def test_stream_sends_keepalives_while_the_model_stalls(
    tmp_path: Path, daemon_env: DaemonHandle, aiohttp_server: Any
) -> None:
    model = await _start(tmp_path, daemon_env, aiohttp_server)

    def read_stream() -> list[tuple[float, bytes]]:
        conn = http.client.HTTPConnection("127.0.0.1", daemon_env.port, timeout=60)
        body = json.dumps({"version": "1", "query": "How does SQLite store data?"})
        conn.request("POST", "/query/stream", body=body,
                     headers={"Content-Type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        assert response.status == 200
        lines = []
        while True:
            line = response.readline()
            if not line:
                break
            lines.append((time.monotonic(), line))
        conn.close()
        return lines

    open_streams: list[float] = []

    async def release() -> None:
        await asyncio.wait_for(model.hanging.wait(), 30)
        await asyncio.sleep(0.5)
        open_streams.append(await asyncio.to_thread(_open_ndjson, daemon_env.port))
        await asyncio.sleep(0.5)
        model.stall = False

    try:
        lines, _ = await asyncio.gather(asyncio.to_thread(read_stream), release())
        after = await asyncio.to_thread(_open_ndjson, daemon_env.port)
        tokens = await asyncio.to_thread(
            _metric, daemon_env.port, "localresearch_tokens_total",
            provider="openai", direction="input",
        )  # fmt: skip
    finally:
        model.stall = False
        await asyncio.to_thread(daemon_env.stop)
    assert open_streams == [1.0]  # /metrics counted the stream while it was open
    assert after == 0.0  # and no longer once it ended
    blanks = [t for t, line in lines if line == b"\n"]
    assert len(blanks) >= 3  # ~1 s of stall at one blank line per 0.2 s
    objects = [json.loads(line) for _t, line in lines if line.strip()]
    assert objects[0]["step"]["kind"] == "scope"
    final = objects[-1]
    assert "partial" not in final and final["answer"]
    assert final["metrics"]["total_tokens"]["input"] > 0  # the model's reported usage
    assert tokens == final["metrics"]["total_tokens"]["input"]  # counted by provider


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_async_query_survives_a_daemon_restart(
    how: str, tmp_path: Path, daemon_env: DaemonHandle, aiohttp_server: Any
) -> None:
    model = await _start(tmp_path, daemon_env, aiohttp_server)
    port = daemon_env.port
    try:
        status, accepted = await asyncio.to_thread(
            call_json,
            port,
            "POST",
            "/query/async",
            {"version": "1", "query": "How does SQLite store data?"},
        )
        query_id = accepted["query_id"]
        await asyncio.wait_for(model.hanging.wait(), 30)
        if how == "stop":
            await asyncio.to_thread(daemon_env.stop)
        else:  # SIGKILL: no chance to record anything on the way out
            pid = daemon_env.pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            for _ in range(200):
                if not _alive(pid):
                    break
                await asyncio.sleep(0.05)
            assert not _alive(pid)
        model.stall = False
        await asyncio.to_thread(daemon_env.start)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, state = await asyncio.to_thread(call_json, port, "GET", f"/query/{query_id}")
            assert status == 200
            if state["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.1)
        assert state["status"] == "complete", state
        assert "SQLite keeps a whole database in one file" in state["answer"]
    finally:
        model.stall = False
        await asyncio.to_thread(daemon_env.stop)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (the CLI's child, not reaped yet) is dead for this purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1].split()[0] != "Z"
    except OSError:
        return False


async def test_a_client_leaving_a_stream_aborts_its_research(
    tmp_path: Path, daemon_env: DaemonHandle, aiohttp_server: Any
) -> None:
    model = await _start(tmp_path, daemon_env, aiohttp_server)
    port = daemon_env.port

    def open_and_leave() -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = json.dumps({"version": "1", "query": "How does SQLite store data?"})
        conn.request("POST", "/query?stream=true", body=body,
                     headers={"Content-Type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        first = response.readline()
        # The client goes away while a dimension's model request is in flight (leaving at once
        # races the pipeline: a keep-alive could find it gone before any dimension starts).
        assert model.hanging_seen.wait(30), "no dimension reached the model"
        conn.close()
        return first

    try:
        first = await asyncio.to_thread(open_and_leave)
        assert json.loads(first)["step"]["kind"] == "scope"
        await asyncio.wait_for(model.hanging.wait(), 30)
        for _ in range(100):  # the next keep-alive write (0.2 s) finds the client gone
            if model.hung_up_at is not None:
                break
            await asyncio.sleep(0.05)
        assert model.hung_up_at is not None
        _status, jobs = await asyncio.to_thread(call_json, port, "GET", "/api/research/deep")
        assert jobs["jobs"][0]["status"] == "cancelled"
    finally:
        model.stall = False
        await asyncio.to_thread(daemon_env.stop)
