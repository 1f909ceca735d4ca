"""The heartbeat's persisted state: last and next run, pause, in-flight runs, failures, jobs."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from localresearch.store import Database

if TYPE_CHECKING:
    from localresearch.heartbeat.report import RunResult


def iso(when: datetime | None) -> str | None:
    """UTC ISO-8601 with a Z, as the API shows times."""
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class State:
    last_run: datetime | None = None
    next_run: datetime | None = None
    last_result: RunResult | None = None
    paused: bool = False
    running_since: datetime | None = None
    malformed_digest: str | None = None


class StateStore:
    """One row of scheduler state plus per-task failure counts and followed research jobs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self) -> State:
        def select(conn: sqlite3.Connection) -> sqlite3.Row | None:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM heartbeat_state WHERE id = 1"
            ).fetchone()
            return row

        row = await self.db.read(select)
        if row is None:
            return State()
        return State(
            last_run=_parse(row["last_run"]),
            next_run=_parse(row["next_run"]),
            last_result=cast("RunResult", json.loads(row["last_result"]))
            if row["last_result"]
            else None,
            paused=bool(row["paused"]),
            running_since=_parse(row["running_since"]),
            malformed_digest=row["malformed_digest"],
        )

    async def save(self, state: State) -> None:
        values = (
            iso(state.last_run),
            iso(state.next_run),
            json.dumps(state.last_result) if state.last_result is not None else None,
            int(state.paused),
            iso(state.running_since),
            state.malformed_digest,
        )

        def update(conn: sqlite3.Connection) -> None:
            conn.execute(
                """INSERT INTO heartbeat_state
                   (id, last_run, next_run, last_result, paused, running_since, malformed_digest)
                   VALUES (1, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET last_run = excluded.last_run,
                     next_run = excluded.next_run, last_result = excluded.last_result,
                     paused = excluded.paused, running_since = excluded.running_since,
                     malformed_digest = excluded.malformed_digest""",
                values,
            )

        await self.db.write(update)

    async def record_failure(self, key: str, error: str, when: datetime) -> int:
        """Count one more failed attempt of a task; returns the attempts so far."""

        def upsert(conn: sqlite3.Connection) -> int:
            conn.execute(
                """INSERT INTO heartbeat_failures (task_key, attempts, last_error, updated_at)
                   VALUES (?, 1, ?, ?)
                   ON CONFLICT (task_key) DO UPDATE SET attempts = attempts + 1,
                     last_error = excluded.last_error, updated_at = excluded.updated_at""",
                (key, error, iso(when)),
            )
            row = conn.execute(
                "SELECT attempts FROM heartbeat_failures WHERE task_key = ?", (key,)
            ).fetchone()
            return int(row[0])

        return await self.db.write(upsert)

    async def clear_failures(self, key: str) -> None:
        await self.db.write(
            lambda conn: conn.execute("DELETE FROM heartbeat_failures WHERE task_key = ?", (key,))
        )

    async def add_job(self, job_id: str, text: str, when: datetime) -> None:
        await self.db.write(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO heartbeat_jobs (job_id, task_text, started_at) "
                "VALUES (?, ?, ?)",
                (job_id, text, iso(when)),
            )
        )

    async def jobs(self) -> list[tuple[str, str]]:
        def select(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            rows = conn.execute(
                "SELECT job_id, task_text FROM heartbeat_jobs ORDER BY started_at"
            ).fetchall()
            return [(str(r[0]), str(r[1])) for r in rows]

        return await self.db.read(select)

    async def drop_job(self, job_id: str) -> None:
        await self.db.write(
            lambda conn: conn.execute("DELETE FROM heartbeat_jobs WHERE job_id = ?", (job_id,))
        )
