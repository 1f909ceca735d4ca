"""A real daemon killed with SIGKILL mid-job resumes after restart: no step redone, every event
exactly once. The model is a local server speaking the OpenAI chat-completions stream."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from localresearch.client import Client
from localresearch.paths import Paths
from tests.daemon_fixture import DaemonHandle
from tests.fakes.search_scifact import QUESTION, research_config, scifact_available, write_corpus

pytestmark = pytest.mark.skipif(not scifact_available(), reason="SciFact data set not present")

DIMENSIONS = ["Folic acid", "Vitamin B12", "Heart disease"]


class FakeModel:
    """OpenAI-compatible /v1/chat/completions (streamed) answering each research step; the
    request for the last dimension hangs until `release` is set."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.hanging = asyncio.Event()
        self.release = asyncio.Event()

    def reply_for(self, prompt: str) -> tuple[str, str]:
        if "research dimensions" in prompt:
            return "scope", json.dumps({"dimensions": DIMENSIONS})
        if "\nDimension: " in prompt:
            dimension = prompt.split("\nDimension: ", 1)[1].split("\n", 1)[0]
            summary = f"{dimension} matters for homocysteine."
            body = {
                "summary": summary,
                "keyFinding": summary,
                "points": [{"text": summary, "source": 1}],
            }
            return dimension, json.dumps(body)
        if "still missing" in prompt:
            return "evaluate", json.dumps({"gaps": [], "newDimensions": []})
        return "synthesis", "# Report\n\nFolic acid lowers homocysteine [1].\n\nB12 too [2].\n"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        assert body["stream"] is True
        prompt = body["messages"][-1]["content"]
        kind, text = self.reply_for(prompt)
        self.calls[kind] += 1
        if kind == DIMENSIONS[-1] and not self.release.is_set():
            self.hanging.set()
            await self.release.wait()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunks = [text[i : i + 16] for i in range(0, len(text), 16)]
        for piece in chunks:
            delta = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            await response.write(f"data: {json.dumps(delta)}\n\n".encode())
        end = {
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(chunks)},
        }
        await response.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
        return response


async def _until(predicate: Any, limit: float = 30.0) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("timed out waiting")


def _read_events(client: Client, job_id: str, count: int, after: int = 0) -> list[Any]:
    got = []
    headers = {"Last-Event-ID": str(after)} if after else {}
    for event in client.stream("GET", f"/api/research/deep/{job_id}", headers=headers):
        got.append(event)
        if len(got) >= count or event.type == "done":
            break
    return got


async def _configure_fake_model(tmp_path: Path, paths: Paths, aiohttp_server: Any) -> FakeModel:
    """Serve the fake OpenAI-format model and point a 3-dimension research config at it."""
    model = FakeModel()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", model.handle)
    server = await aiohttp_server(app)
    corpus = tmp_path / "corpus"
    write_corpus(corpus, extra=40, queries=10)
    config = research_config(corpus, dimensions=3, max_rounds=1, dimension_concurrency=1)
    config += f'\n[llm]\nprovider = "openai"\nbase_url = "http://127.0.0.1:{server.port}"\n'
    paths.config_file.write_text(config, encoding="utf-8")
    return model


async def test_sigkill_mid_job_resumes_with_every_event_exactly_once(
    tmp_path: Path, paths: Paths, daemon_env: DaemonHandle, aiohttp_server: Any
) -> None:
    model = await _configure_fake_model(tmp_path, paths, aiohttp_server)

    await asyncio.to_thread(daemon_env.start)
    try:
        client = Client(daemon_env.url)
        started = await asyncio.to_thread(client.post, "/api/research/deep", {"query": QUESTION})
        job_id = started["researchId"]
        await asyncio.wait_for(model.hanging.wait(), 30)
        before = await asyncio.to_thread(client.get, f"/api/research/deep/{job_id}/status")
        assert before["status"] == "running" and before["dimensionsComplete"] == 2
        seen = await asyncio.to_thread(_read_events, client, job_id, before["lastEventId"])
        watcher = await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-m", "localresearch", "jobs", "watch", job_id],
            env=daemon_env.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        pid = daemon_env.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await _until(lambda: not _alive(pid))
        model.release.set()

        await asyncio.to_thread(daemon_env.start)
        done = await _until(
            lambda: _status(client, job_id) if _status(client, job_id) in TERMINAL else None
        )
        assert done == "complete"
        rest = await asyncio.to_thread(_read_events, client, job_id, 10_000, seen[-1].id)
        everything = await asyncio.to_thread(_read_events, client, job_id, 10_000)
        report = await asyncio.to_thread(_fetch_report, daemon_env.port, job_id)
        watched, watch_err = await asyncio.to_thread(watcher.communicate, timeout=30)
        listing = await asyncio.to_thread(daemon_env.cli, "jobs", "list")
    finally:
        await asyncio.to_thread(daemon_env.stop)

    ids = [e.id for e in everything]
    assert ids == list(range(1, len(ids) + 1))
    assert [e.to_dict() for e in seen + rest] == [e.to_dict() for e in everything]
    types = Counter(e.type for e in everything)
    assert types["scope_started"] == types["scope_complete"] == 1
    assert types["dimension_started"] == types["dimension_complete"] == 3
    assert types["evaluate_started"] == types["synthesis_started"] == types["done"] == 1
    started_dims = [e.data["dimension"] for e in everything if e.type == "dimension_started"]
    assert started_dims == DIMENSIONS
    # No completed step ran again: only the interrupted dimension was asked twice.
    assert model.calls["scope"] == 1
    assert model.calls["Folic acid"] == model.calls["Vitamin B12"] == 1
    assert model.calls["Heart disease"] == 2
    assert model.calls["synthesis"] == 1
    assert "Folic acid lowers homocysteine [1]" in report and "## Sources" in report
    # `jobs watch` rode out the kill and restart: it reconnected and printed the report once.
    assert watcher.returncode == 0, watch_err
    assert watched.count("Folic acid lowers homocysteine [1]") == 1
    assert job_id in listing.stdout and "complete" in listing.stdout


TERMINAL = ("complete", "error", "cancelled")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our child, not reaped yet) is dead for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1].split()[0] != "Z"
    except OSError:
        return False


def _status(client: Client, job_id: str) -> str | None:
    try:
        return str(client.get(f"/api/research/deep/{job_id}/status")["status"])
    except Exception:
        return None


INTERACTIVE_DEEP = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv = ['research', 'deep', sys.argv[1]]; "
    "runpy.run_module('localresearch', run_name='__main__')"
)


def _fetch_report(port: int, job_id: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", f"/api/research/deep/{job_id}/report")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


async def test_ctrl_c_detaches_then_cancel_keeps_a_partial_report(
    tmp_path: Path, paths: Paths, daemon_env: DaemonHandle, aiohttp_server: Any
) -> None:
    model = await _configure_fake_model(tmp_path, paths, aiohttp_server)
    await asyncio.to_thread(daemon_env.start)
    try:
        proc = await asyncio.to_thread(
            subprocess.Popen,
            # As from a terminal: Ctrl-C's default action, even when this suite runs in the
            # background (a background job starts with SIGINT ignored, and children inherit it).
            [sys.executable, "-c", INTERACTIVE_DEEP, QUESTION],
            env={**daemon_env.env, "PYTHONFAULTHANDLER": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        await asyncio.wait_for(model.hanging.wait(), 30)
        await asyncio.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        try:
            _out, err = await asyncio.to_thread(proc.communicate, timeout=20)
        except subprocess.TimeoutExpired:
            # Still running: SIGABRT makes faulthandler print every thread's stack, to show where.
            proc.send_signal(signal.SIGABRT)
            _out, err = await asyncio.to_thread(proc.communicate, timeout=10)
            pytest.fail(f"`research deep` did not exit on Ctrl-C within 20 s:\n{err[-6000:]}")
        assert proc.returncode == 0, err
        assert "Detached" in err and "Traceback" not in err
        job_id = err.split("research jobs watch ")[1].split()[0]
        cancel = await asyncio.to_thread(daemon_env.cli, "jobs", "cancel", job_id)
        assert "Cancelling" in cancel.stdout
        model.release.set()
        client = Client(daemon_env.url)
        await _until(lambda: _status(client, job_id) == "cancelled")
        partial = await asyncio.to_thread(daemon_env.cli, "jobs", "export", job_id)
    finally:
        await asyncio.to_thread(daemon_env.stop)
    assert "Partial report" in partial.stdout
    # The dimensions that finished are kept; the one whose model call was in flight when the
    # job was cancelled was abandoned at once (its request closed), so it is not in the report.
    for dimension in DIMENSIONS[:-1]:
        assert f"## {dimension}" in partial.stdout
    assert f"## {DIMENSIONS[-1]}" not in partial.stdout
    assert model.calls["synthesis"] == 0
