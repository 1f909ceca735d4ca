"""A research job whose storage fills up ends `error` and releases everyone waiting on it.

The disk is filled for real at the SQLite level: `PRAGMA max_page_count` caps the database at
its current size, so a write that needs one more page fails with SQLITE_FULL, exactly as on a
full disk, and the job tables are packed until a new event no longer fits. Raising the cap
frees the space.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localresearch.errors import Unavailable
from localresearch.events import Event
from localresearch.paths import Paths
from localresearch.research import manager
from localresearch.research.manager import JobManager
from localresearch.research.types import JobOptions
from localresearch.runtime import Runtime
from localresearch.store import Database
from tests.fakes.search_scifact import (
    QUESTION,
    research_config,
    scifact_available,
    scifact_runtime,
    write_corpus,
)

pytestmark = pytest.mark.skipif(not scifact_available(), reason="SciFact data set not present")

FULL = "Storage unavailable: the disk is full"


@pytest.fixture
def runtime(scifact_jobs_runtime: Runtime) -> Runtime:
    return scifact_jobs_runtime


async def fill_disk(db: Database) -> None:
    """Cap the database at its size, then pack the events table (through a job of its own)
    until one more row does not fit: the next job can be created, but not emit an event."""

    def cap(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO research_jobs (id, query, options, status, phase, created_at,"
            " updated_at) VALUES ('res_ballast', 'b', '{}', 'complete', 'done', '', '')"
        )
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

    def pack(start: int, rows: int) -> Callable[[sqlite3.Connection], None]:
        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO research_events VALUES ('res_ballast', ?, 'b', ?, 'b', '', '')",
                [(seq, seq) for seq in range(start, start + rows)],
            )

        return insert

    await db.write(cap)
    seq = 0
    for rows in (50, 1):  # fifty rows at a time, then one at a time to the last that fits
        while True:
            try:
                await db.write(pack(seq, rows))
            except Unavailable as exc:
                assert "disk is full" in exc.message
                break
            seq += rows


async def free_disk(db: Database) -> None:
    await db.write(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823"))


def stored_row(db: Database, job_id: str) -> sqlite3.Row:
    """The job's row as the file holds it (not as the daemon shows it)."""
    with sqlite3.connect(db.path) as conn:
        conn.row_factory = sqlite3.Row
        row: sqlite3.Row = conn.execute(
            "SELECT * FROM research_jobs WHERE id = ?", (job_id,)
        ).fetchone()
        return row


async def test_a_full_disk_ends_the_job_error_and_releases_every_waiter(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager, "ENDING_RETRY_SECONDS", 0.05)
    jobs = runtime.jobs
    assert isinstance(jobs, JobManager)
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    db = runtime.db
    await fill_disk(db)

    job = await jobs.submit(QUESTION)  # accepted: its row still fits
    streamed: list[list[Event]] = []

    def sink(events: list[Event]) -> bool:  # as the SSE route streams
        streamed.append(events)
        return True

    sink_done = asyncio.ensure_future(jobs.stream_to(job.id, sink, 0, None, 5))

    async def subscribe() -> list[Event]:
        return [event async for event in jobs.subscribe(job.id)]

    subscribed = asyncio.ensure_future(subscribe())
    final = await asyncio.wait_for(jobs.wait(job.id), 30)
    assert final.status == "error" and final.error is not None
    assert final.error.startswith(FULL)
    assert final.phase == "done" and final.finished_at

    # Every subscriber's stream ends with the job's error, then `done`.
    events = await asyncio.wait_for(subscribed, 5)
    assert [e.type for e in events] == ["error", "done"]  # not even `scope_started` fitted
    assert events[-2].data["message"].startswith(FULL)
    assert events[-1].data == {"researchId": job.id, "status": "error"}
    await asyncio.wait_for(sink_done, 5)
    assert [e.type for batch in streamed for e in batch][-1] == "done"
    # A late subscriber, `cancel` and the list say the same, while nothing could be saved.
    late = await asyncio.wait_for(subscribe(), 5)
    assert [e.id for e in late] == [e.id for e in events]
    cancelled = await asyncio.wait_for(jobs.cancel(job.id), 5)
    assert cancelled.status == "error"
    listed, _total = await jobs.list_jobs(status="error")
    assert [view.job.id for view in listed] == [job.id]
    assert stored_row(db, job.id)["status"] == "running"

    # Once there is room again, the end is saved as it was shown.
    await free_disk(db)
    for _ in range(200):
        if stored_row(db, job.id)["status"] != "running":
            break
        await asyncio.sleep(0.05)
    row = stored_row(db, job.id)
    assert (row["status"], row["error"], row["phase"]) == ("error", final.error, "done")
    assert row["last_event_id"] == events[-1].id
    saved = await jobs.store.events(job.id)
    assert saved == events
    assert [job.id for job in await jobs.store.unfinished()] == []  # nothing to resume

    del subscribed, sink_done
    gc.collect()
    await asyncio.sleep(0)
    assert unhandled == []  # no "Task exception was never retrieved"


async def test_an_end_never_saved_resumes_on_the_next_start(tmp_path: Path, paths: Paths) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    text = research_config(corpus, dimensions=2, max_rounds=0)
    async with scifact_runtime(text, paths) as rt:
        assert rt.jobs is not None
        await fill_disk(rt.db)
        job = await rt.jobs.submit(QUESTION)
        assert (await asyncio.wait_for(rt.jobs.wait(job.id), 30)).status == "error"
    # Stopped with the disk still full: the file says the job was interrupted, as it was.
    assert stored_row(rt.db, job.id)["status"] == "running"
    async with scifact_runtime(text, paths) as rt:  # a new connection: the space is back
        assert rt.jobs is not None
        final = await asyncio.wait_for(rt.jobs.wait(job.id), 60)
        assert final.status == "complete", final.error
        events = await rt.jobs.store.events(job.id)
        assert [e.id for e in events] == list(range(1, len(events) + 1))
        assert [e.type for e in events].count("done") == 1


async def test_cancel_ends_a_job_no_task_runs(runtime: Runtime) -> None:
    # A job left `running` with nothing running it (as a task that died used to leave it).
    jobs = runtime.jobs
    assert isinstance(jobs, JobManager)
    job = await jobs.store.create(QUESTION, JobOptions(), None)
    await jobs.store.set_status(job.id, "running")

    async def subscribe() -> list[Event]:
        return [event async for event in jobs.subscribe(job.id)]

    subscribed = asyncio.ensure_future(subscribe())
    await asyncio.sleep(0.05)  # subscribed before the cancel
    cancelled = await asyncio.wait_for(jobs.cancel(job.id), 5)
    assert cancelled.status == "cancelled" and cancelled.phase == "done"
    events = await asyncio.wait_for(subscribed, 5)
    assert [(e.type, e.id) for e in events] == [("done", 1)]
