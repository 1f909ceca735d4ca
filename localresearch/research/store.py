"""Durable job state in SQLite: every write goes through the database's single writer."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from localresearch.errors import NotFound
from localresearch.events import Event, utc_now_iso
from localresearch.research.types import JobOptions, Source
from localresearch.store import Database

T = TypeVar("T")
log = logging.getLogger(__name__)


def new_job_id() -> str:
    return f"res_{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True)
class JobRow:
    """One row of research_jobs, as the status snapshot and the list need it."""

    id: str
    query: str
    session_id: str | None
    options: JobOptions
    status: str
    phase: str
    dimensions_total: int
    dimensions_complete: int
    source_count: int
    last_event_id: int
    cancel_requested: bool
    error: str | None
    created_at: str
    updated_at: str
    finished_at: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRow:
        return cls(
            id=row["id"],
            query=row["query"],
            session_id=row["session_id"],
            options=JobOptions.from_dict(json.loads(row["options"])),
            status=row["status"],
            phase=row["phase"],
            dimensions_total=row["dimensions_total"],
            dimensions_complete=row["dimensions_complete"],
            source_count=row["source_count"],
            last_event_id=row["last_event_id"],
            cancel_requested=bool(row["cancel_requested"]),
            error=row["error"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
        )


@dataclass(frozen=True)
class Progress:
    """The snapshot fields an event changes, written in the same transaction as the event."""

    phase: str
    dimensions_total: int
    dimensions_complete: int
    source_count: int


@dataclass(frozen=True)
class Ending:
    """A job's last events (`(step, ordinal, event)`, its `done` last) and its terminal status:
    what the storage refused to write, shown to readers from memory until it is written."""

    events: list[tuple[str, int, Event]]
    progress: Progress
    final_status: tuple[str, str | None]

    @classmethod
    def after(
        cls,
        job_id: str,
        progress: Progress,
        status: str,
        error: str | None = None,
        code: str = "internal_error",
        *,
        ordinal: int,
        seq: int,
    ) -> Ending:
        """The end of a job whose last event is `seq` and whose `end` step has `ordinal` events:
        an `error` event when it ends with `error`, then `done`."""
        events: list[tuple[str, int, Event]] = []
        if error is not None:
            seq += 1
            data: dict[str, Any] = {"message": error, "code": code}
            events.append(("end", ordinal, Event(type="error", data=data, id=seq)))
            ordinal += 1
        done = {"researchId": job_id, "status": status}
        events.append(("end", ordinal, Event(type="done", data=done, id=seq + 1)))
        return cls(events, progress, (status, error))

    def overlay(self, row: JobRow) -> JobRow:
        done = self.events[-1][2]
        return dataclasses.replace(
            row,
            status=self.final_status[0],
            error=self.final_status[1],
            phase=self.progress.phase,
            dimensions_total=self.progress.dimensions_total,
            dimensions_complete=self.progress.dimensions_complete,
            source_count=self.progress.source_count,
            last_event_id=done.id or row.last_event_id,
            updated_at=done.timestamp,
            finished_at=done.timestamp,
        )


@dataclass(frozen=True)
class Report:
    markdown: str
    sources: list[dict[str, Any]]
    partial: bool
    updated_at: str


class JobStore:
    """Reads and writes of research jobs; the pipeline and the manager share one instance."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Jobs that ended while the storage refused writes (a full disk): readers see them
        # ended from here; every write of the store, and the manager's retries, write them.
        self._unsaved: dict[str, Ending] = {}
        self._saving = asyncio.Lock()

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._unsaved:
            await self.save_endings()
        return await self.db.write(fn)

    # -- jobs ------------------------------------------------------------------------------

    async def create(self, query: str, options: JobOptions, session_id: str | None) -> JobRow:
        job_id = new_job_id()
        now = utc_now_iso()

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO research_jobs (id, query, session_id, options, status, phase,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', 'scope', ?, ?)",
                (job_id, query, session_id, json.dumps(options.to_dict()), now, now),
            )

        await self._write(insert)
        return await self.get(job_id)

    async def get(self, job_id: str) -> JobRow:
        def select(conn: sqlite3.Connection) -> sqlite3.Row | None:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM research_jobs WHERE id = ?", (job_id,)
            ).fetchone()
            return row

        row = await self.db.read(select)
        if row is None:
            raise NotFound(f"No research job with id {job_id!r}")
        return self._shown(JobRow.from_row(row))

    def _shown(self, job: JobRow) -> JobRow:
        ending = self._unsaved.get(job.id)
        return job if ending is None else ending.overlay(job)

    async def list_jobs(
        self, limit: int, offset: int, status: str | None
    ) -> tuple[list[JobRow], int]:
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        if status and self._unsaved:  # as readers see them: an unsaved ending's status counts
            ended = [(i, e.final_status[0] == status) for i, e in self._unsaved.items()]
            gone = [i for i, same in ended if not same]
            added = [i for i, same in ended if same]
            where = (
                f"WHERE (status = ? AND id NOT IN ({','.join('?' * len(gone))}))"
                f" OR id IN ({','.join('?' * len(added))})"
            )
            args = [status, *gone, *added]

        def select(conn: sqlite3.Connection) -> tuple[list[sqlite3.Row], int]:
            total = conn.execute(f"SELECT count(*) FROM research_jobs {where}", args).fetchone()
            rows = conn.execute(
                f"SELECT * FROM research_jobs {where} ORDER BY created_at DESC, rowid DESC"
                " LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
            return rows, int(total[0])

        rows, total = await self.db.read(select)
        return [self._shown(JobRow.from_row(r)) for r in rows], total

    async def unfinished(self) -> list[JobRow]:
        """Jobs a previous daemon left queued or running, oldest first, to resume."""

        def select(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT * FROM research_jobs WHERE status IN ('queued', 'running')"
                " ORDER BY created_at, rowid"
            ).fetchall()

        rows = [JobRow.from_row(r) for r in await self.db.read(select)]
        return [job for job in rows if job.id not in self._unsaved]

    async def set_status(self, job_id: str, status: str, error: str | None = None) -> None:
        now = utc_now_iso()
        finished = now if status in ("complete", "error", "cancelled") else None

        def update(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE research_jobs SET status = ?, error = ?, updated_at = ?,"
                " finished_at = COALESCE(?, finished_at) WHERE id = ?",
                (status, error, now, finished, job_id),
            )

        await self._write(update)

    async def request_cancel(self, job_id: str) -> None:
        def update(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE research_jobs SET cancel_requested = 1, updated_at = ? WHERE id = ?",
                (utc_now_iso(), job_id),
            )

        await self._write(update)

    # -- events ----------------------------------------------------------------------------

    async def append_event(
        self,
        job_id: str,
        step: str,
        ordinal: int,
        event: Event,
        progress: Progress,
        final_status: tuple[str, str | None] | None = None,
    ) -> None:
        """Persist one event and the snapshot it implies, atomically (the id is assigned).

        `final_status` ends the job in the same transaction as its last event, so no reader ever
        sees a finished job without its `done` event or the other way round.
        """
        await self._write(
            lambda conn: _insert_events(
                conn, job_id, [(step, ordinal, event)], progress, final_status
            )
        )

    async def end(self, job_id: str, ending: Ending) -> bool:
        """Write a job's last events and terminal status in one transaction. If the storage
        refuses (a full disk), keep them: readers see the job ended, and the next write of the
        store (or `save_endings`) writes them. Returns whether they were written."""
        try:
            await self.db.write(functools.partial(_insert_ending, job_id=job_id, ending=ending))
        except Exception as exc:  # the storage refused: shown from memory, written later
            self._unsaved[job_id] = ending
            log.error(
                "research job %s ended %s, but the end could not be saved yet (%s); it is "
                "saved once the storage accepts writes again",
                job_id, ending.final_status[0], exc,
            )  # fmt: skip
            return False
        return True

    def unsaved(self) -> bool:
        return bool(self._unsaved)

    async def save_endings(self) -> bool:
        """Write the endings the storage refused before; True once none is left."""
        async with self._saving:  # one writer of each ending
            for job_id, ending in list(self._unsaved.items()):
                try:
                    await self.db.write(
                        functools.partial(_insert_ending, job_id=job_id, ending=ending)
                    )
                except Exception:  # still refused: try again later
                    continue
                del self._unsaved[job_id]
                log.info("research job %s: its end (%s) is saved", job_id, ending.final_status[0])
        return not self._unsaved

    def events_sync(self, conn: sqlite3.Connection, job_id: str, after: int) -> list[Event]:
        rows = conn.execute(
            "SELECT seq, type, data, timestamp FROM research_events"
            " WHERE job_id = ? AND seq > ? ORDER BY seq",
            (job_id, after),
        ).fetchall()
        return [
            Event(type=r["type"], data=json.loads(r["data"]), timestamp=r["timestamp"], id=r["seq"])
            for r in rows
        ]

    async def events(self, job_id: str, after: int = 0) -> list[Event]:
        events = await self.db.read(lambda conn: self.events_sync(conn, job_id, after))
        ending = self._unsaved.get(job_id)
        if ending is not None:  # not saved yet: the stored events, then these
            last = (events[-1].id or after) if events else after
            events += [e for _s, _o, e in ending.events if e.id is not None and e.id > last]
        return events

    async def step_event_counts(self, job_id: str) -> dict[str, int]:
        """How many events each step already emitted (a resumed step skips that many)."""

        def select(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT step, max(ordinal) + 1 FROM research_events WHERE job_id = ? GROUP BY step",
                (job_id,),
            ).fetchall()
            return {r[0]: int(r[1]) for r in rows}

        counts = await self.db.read(select)
        ending = self._unsaved.get(job_id)
        for step, ordinal, _event in ending.events if ending is not None else []:
            counts[step] = max(counts.get(step, 0), ordinal + 1)
        return counts

    # -- checkpoints and sources -----------------------------------------------------------

    async def complete_step(
        self,
        job_id: str,
        step: str,
        result: Any,
        usage: dict[str, int],
        sources: list[Source] | None = None,
    ) -> None:
        """Record a finished step with its result and sources in one transaction."""
        now = utc_now_iso()
        result_json = json.dumps(result, ensure_ascii=False)
        usage_json = json.dumps(usage)

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO research_steps (job_id, step, result, usage, completed_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (job_id, step, result_json, usage_json, now),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO research_sources (job_id, source_id, step, dimension,"
                " title, location, url, passage, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (job_id, s.id, step, s.dimension, s.title, s.location, s.url, s.passage, s.kind)
                    for s in sources or []
                ],
            )

        await self._write(insert)

    async def steps(self, job_id: str) -> dict[str, tuple[Any, dict[str, int]]]:
        def select(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT step, result, usage FROM research_steps WHERE job_id = ?", (job_id,)
            ).fetchall()

        rows = await self.db.read(select)
        return {r["step"]: (json.loads(r["result"]), json.loads(r["usage"])) for r in rows}

    async def sources(self, job_id: str) -> list[Source]:
        def select(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT * FROM research_sources WHERE job_id = ? ORDER BY rowid", (job_id,)
            ).fetchall()

        return [
            Source(
                id=r["source_id"],
                title=r["title"],
                location=r["location"],
                url=r["url"],
                passage=r["passage"],
                kind=r["kind"],
                dimension=r["dimension"],
            )
            for r in await self.db.read(select)
        ]

    # -- reports ---------------------------------------------------------------------------

    async def save_report(
        self, job_id: str, markdown: str, sources: list[dict[str, Any]], partial: bool
    ) -> None:
        now = utc_now_iso()
        sources_json = json.dumps(sources, ensure_ascii=False)

        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO research_reports (job_id, markdown, sources, partial,"
                " updated_at) VALUES (?, ?, ?, ?, ?)",
                (job_id, markdown, sources_json, int(partial), now),
            )

        await self._write(upsert)

    async def report(self, job_id: str) -> Report | None:
        def select(conn: sqlite3.Connection) -> sqlite3.Row | None:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM research_reports WHERE job_id = ?", (job_id,)
            ).fetchone()
            return row

        row = await self.db.read(select)
        if row is None:
            return None
        return Report(
            markdown=row["markdown"],
            sources=json.loads(row["sources"]),
            partial=bool(row["partial"]),
            updated_at=row["updated_at"],
        )


def _insert_ending(conn: sqlite3.Connection, job_id: str, ending: Ending) -> None:
    _insert_events(conn, job_id, ending.events, ending.progress, ending.final_status)


def _insert_events(
    conn: sqlite3.Connection,
    job_id: str,
    events: list[tuple[str, int, Event]],
    progress: Progress,
    final_status: tuple[str, str | None] | None,
) -> None:
    """Events and the snapshot after the last of them; `final_status` ends the job."""
    for step, ordinal, event in events:
        assert event.id is not None
        payload = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
        conn.execute(
            "INSERT INTO research_events (job_id, seq, step, ordinal, type, data, timestamp)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (job_id, event.id, step, ordinal, event.type, payload, event.timestamp),
        )
    last = events[-1][2]
    conn.execute(
        "UPDATE research_jobs SET last_event_id = ?, phase = ?, dimensions_total = ?,"
        " dimensions_complete = ?, source_count = ?, updated_at = ? WHERE id = ?",
        (
            last.id,
            progress.phase,
            progress.dimensions_total,
            progress.dimensions_complete,
            progress.source_count,
            last.timestamp,
            job_id,
        ),
    )
    if final_status is not None:
        conn.execute(
            "UPDATE research_jobs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
            (final_status[0], final_status[1], last.timestamp, job_id),
        )
