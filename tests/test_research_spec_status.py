"""The jobs API's spec (specs/research-jobs-api.md) on the real app, where the daemon's own
richer states could leak: a job waiting for a free slot (the spec has no `queued`), and an
event stream resumed with a Last-Event-ID beyond the job's last event."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from localresearch.client import parse_sse
from localresearch.events import Event
from localresearch.research.builtin import BuiltinEngine
from localresearch.server.keys import RUNTIME
from localresearch.server.routes import research as research_routes
from tests.fakes.search_scifact import write_notes

NOTES = {
    "sqlite.md": "# SQLite\n\nSQLite keeps a whole database in one file.\n\n"
    "WAL mode lets readers continue while one writer commits.\n",
    "wifi.md": "# Home Wi-Fi\n\nWPA3 protects the home network with a strong passphrase.\n\n"
    "The router's firmware needs updates for security fixes.\n",
}
QUESTION = "How do SQLite WAL mode and Wi-Fi security work?"
SPEC_STATUSES = {"running", "complete", "error", "cancelled"}
SPEC_PHASES = {"scope", "research", "evaluate", "synthesis", "done"}


class Gate:
    """Holds every job in its scoping (running, its `scope_started` sent) until opened."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    def engine(self) -> GatedEngine:
        return GatedEngine(self)


class GatedEngine:
    """The builtin engine, whose scoping waits for its gate."""

    def __init__(self, gate: Gate) -> None:
        self.inner = BuiltinEngine()
        self.gate = gate

    async def scope(self, *args: Any, **kwargs: Any) -> Any:
        self.gate.entered.set()
        await self.gate.opened.wait()
        return await self.inner.scope(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
async def app_client(make_client: Any, write_config: Any, tmp_path: Path) -> Any:
    notes = write_notes(tmp_path / "notes", NOTES)
    write_config(
        f'[memory]\npaths = ["{notes}"]\nwatch = false\n\n'
        "[research]\nmax_concurrent_jobs = 1\ndimensions = 2\nmax_rounds = 0\n"
    )
    client = await make_client()
    await client.app[RUNTIME].memory.wait_ready()
    return client


async def _start(client: Any) -> str:
    response = await client.post("/api/research/deep", json={"query": QUESTION})
    assert response.status == 200, await response.text()
    return str((await response.json())["researchId"])


async def _status(client: Any, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/research/deep/{job_id}/status")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def _sse(client: Any, job_id: str, last_event_id: str | None, limit: float) -> list[Event]:
    """Read the stream as an EventSource does (comments skipped, events by blank lines) until
    the server ends it; fails if it is still open after `limit` seconds."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    response = await client.get(f"/api/research/deep/{job_id}", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    lines: list[bytes] = []
    try:
        async with asyncio.timeout(limit):
            async for line in response.content:
                lines.append(line)
    except TimeoutError:
        response.close()
        pytest.fail(f"the stream (Last-Event-ID {last_event_id}) was still open after {limit}s")
    return list(parse_sse(lines))


async def test_a_job_waiting_for_a_slot_is_running_on_the_spec_path(app_client: Any) -> None:
    client = app_client
    jobs = client.app[RUNTIME].jobs
    gate = Gate()
    jobs.engine_factory = gate.engine
    first = await _start(client)
    waiting = [await _start(client) for _ in range(3)]
    await asyncio.wait_for(gate.entered.wait(), 10)  # the first runs: the others wait for it
    try:
        for job_id in waiting:
            status = await _status(client, job_id)
            assert status["status"] == "running" and status["phase"] == "scope", status
            assert status["queued"] is True
            assert status["dimensionsTotal"] == status["dimensionsComplete"] == 0
        running = await _status(client, first)
        assert running["status"] == "running" and running["queued"] is False
        # The daemon's own list says what they are, and finds them by it.
        listed = await (await client.get("/api/research/deep?status=queued")).json()
        assert {job["researchId"] for job in listed["jobs"]} == set(waiting)
        assert all(job["status"] == "queued" and "queued" not in job for job in listed["jobs"])
    finally:
        gate.opened.set()
    for job_id in [first, *waiting]:
        await jobs.wait(job_id)
        status = await _status(client, job_id)
        assert status["status"] in SPEC_STATUSES and status["phase"] in SPEC_PHASES
        assert status["status"] == "complete" and status["queued"] is False


async def test_a_query_not_started_yet_is_running_on_the_query_path(app_client: Any) -> None:
    """GET /query/{id} (specs/query-api.md) shows `running` while a query runs; its record
    says `queued` until its research job is submitted."""
    client = app_client
    service = client.app[RUNTIME].query
    run_id = str(uuid.uuid4())
    await service.store.create(run_id, "1", {"version": "1", "query": QUESTION}, None)
    assert (await service.store.get(run_id)).status == "queued"
    response = await client.get(f"/query/{run_id}")
    assert response.status == 200
    assert await response.json() == {"query_id": run_id, "status": "running"}


@pytest.mark.parametrize("writes", ["transport", "response"])
async def test_last_event_id_beyond_the_last_never_hangs(
    app_client: Any, monkeypatch: pytest.MonkeyPatch, writes: str
) -> None:
    monkeypatch.setattr(research_routes, "SSE_WRITES", writes)
    client = app_client
    jobs = client.app[RUNTIME].jobs
    gate = Gate()
    jobs.engine_factory = gate.engine
    running = await _start(client)
    queued = await _start(client)
    await asyncio.wait_for(gate.entered.wait(), 10)
    assert (await jobs.store.get(running)).last_event_id >= 1
    # Streams opened while the jobs run (one waiting for its slot), resumed past any id the
    # jobs will reach: nothing to send, but they end when the job does.
    beyond = [
        asyncio.create_task(_sse(client, job_id, "100000", limit=30))
        for job_id in (running, queued)
    ]
    await asyncio.sleep(0.3)
    assert not any(task.done() for task in beyond)  # still running: the streams wait
    gate.opened.set()
    for job_id in (running, queued):
        assert (await jobs.wait(job_id)).status == "complete"
    ended_at = time.monotonic()
    assert await asyncio.gather(*beyond) == [[], []]
    assert time.monotonic() - ended_at < 5  # at the job's end, not at a keep-alive or never

    # A finished job: its last id, or any id beyond it, closes the stream at once.
    last = (await jobs.store.get(running)).last_event_id
    full = await _sse(client, running, None, limit=10)
    assert [e.id for e in full] == list(range(1, last + 1)) and full[-1].type == "done"
    for after in (str(last), str(last + 1), str(last + 84), "99"):
        started = time.monotonic()
        assert await _sse(client, running, after, limit=5) == []
        assert time.monotonic() - started < 2
    rest = await _sse(client, running, str(last - 2), limit=5)
    assert [e.id for e in rest] == [last - 1, last]
    bad = await client.get(f"/api/research/deep/{running}", headers={"Last-Event-ID": "abc"})
    assert bad.status == 400
