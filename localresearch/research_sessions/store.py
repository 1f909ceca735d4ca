"""The research sessions' SQLite store: one row per session, its task results, events, reports.

Every change of a session and the event that announces it are written in one transaction, so
a crash never leaves a phase without its event (or an event without its phase)."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from localresearch.errors import NotFound
from localresearch.store import Database

_COLUMNS = (
    "id, owner, phase, topic, questions, feedback, report_plan, tasks, final_report, settings,"
    " progress, error, last_event_id, created_at, updated_at, expires_at"
)


@dataclass(frozen=True)
class Task:
    """One task of a plan: what to search for, and which aspect of the topic it serves."""

    query: str
    focus: str

    def to_dict(self) -> dict[str, str]:
        return {"query": self.query, "focus": self.focus}


@dataclass(frozen=True)
class SessionRow:
    id: str
    owner: str | None
    phase: str
    topic: str
    questions: str
    feedback: str
    report_plan: str
    tasks: list[Task]
    final_report: str
    settings: dict[str, Any]
    progress: int
    error: str | None
    last_event_id: int
    created_at: str
    updated_at: str
    expires_at: float

    @classmethod
    def of(cls, row: sqlite3.Row | tuple[Any, ...]) -> SessionRow:
        values = list(row)
        values[7] = [Task(t["query"], t["focus"]) for t in json.loads(values[7])]
        values[9] = json.loads(values[9])
        return cls(*values)


@dataclass(frozen=True)
class StoredEvent:
    id: int
    event: str
    data: dict[str, Any]


@dataclass
class Change:
    """Columns to set on a session, and the event to append with them (if any)."""

    values: dict[str, Any] = field(default_factory=dict)
    event: tuple[str, dict[str, Any]] | None = None


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ms() -> str:
    """Now, to the millisecond: when the event was made (stream delays are measured from it)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, owner: str | None, settings: dict[str, Any], ttl: float) -> SessionRow:
        session_id = uuid.uuid4().hex
        stamp = now_iso()

        def insert(conn: sqlite3.Connection) -> SessionRow:
            conn.execute(
                "INSERT INTO research_sessions (id, owner, phase, settings, created_at,"
                " updated_at, expires_at) VALUES (?, ?, 'topic', ?, ?, ?, ?)",
                (session_id, owner, json.dumps(settings), stamp, stamp, time.time() + ttl),
            )
            return _get(conn, session_id)

        return await self.db.write(insert)

    async def get(self, session_id: str) -> SessionRow:
        return await self.db.read(lambda conn: _get(conn, session_id))

    async def list_live(self, owner: str | None) -> list[SessionRow]:
        """Sessions not yet expired, newest first (every session when `owner` is None)."""

        def query(conn: sqlite3.Connection) -> list[SessionRow]:
            sql = f"SELECT {_COLUMNS} FROM research_sessions WHERE expires_at > ?"
            args: list[Any] = [time.time()]
            if owner is not None:
                sql += " AND owner = ?"
                args.append(owner)
            rows = conn.execute(sql + " ORDER BY created_at DESC, id LIMIT 1000", args)
            return [SessionRow.of(r) for r in rows]

        return await self.db.read(query)

    async def count_live(self, owner: str | None) -> int:
        def query(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT count(*) FROM research_sessions WHERE owner IS ? AND expires_at > ?",
                (owner, time.time()),
            ).fetchone()
            return int(row[0])

        return await self.db.read(query)

    async def update(
        self, session_id: str, change: Change, *, expect: tuple[str, ...] | None = None
    ) -> tuple[SessionRow, StoredEvent | None]:
        """Apply a change (and append its event) atomically; `expect` guards the phase."""

        def write(conn: sqlite3.Connection) -> tuple[SessionRow, StoredEvent | None]:
            row = _get(conn, session_id)
            if expect is not None and row.phase not in expect:
                from localresearch.research_sessions.phases import PhaseError

                raise PhaseError(row.phase, expect)
            values = dict(change.values)
            values["updated_at"] = now_iso()
            stored: StoredEvent | None = None
            if change.event is not None:
                name, data = change.event
                stored = StoredEvent(row.last_event_id + 1, name, {**data, "timestamp": _ms()})
                conn.execute(
                    "INSERT INTO research_session_events (session_id, id, event, data,"
                    " created_at) VALUES (?, ?, ?, ?, ?)",
                    (session_id, stored.id, stored.event, json.dumps(stored.data), now_iso()),
                )
                values["last_event_id"] = stored.id
            encoded = {
                k: json.dumps(v) if k in ("tasks", "settings") else v for k, v in values.items()
            }
            sets = ", ".join(f"{k} = ?" for k in encoded)
            conn.execute(
                f"UPDATE research_sessions SET {sets} WHERE id = ?", (*encoded.values(), session_id)
            )
            return _get(conn, session_id), stored

        return await self.db.write(write)

    async def save_result(
        self, session_id: str, idx: int, query: str, result: dict[str, Any]
    ) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO research_session_results (session_id, idx, query, result)"
                " VALUES (?, ?, ?, ?)",
                (session_id, idx, query, json.dumps(result)),
            )

        await self.db.write(write)

    async def results(self, session_id: str) -> list[tuple[int, str, dict[str, Any]]]:
        def query(conn: sqlite3.Connection) -> list[tuple[int, str, dict[str, Any]]]:
            rows = conn.execute(
                "SELECT idx, query, result FROM research_session_results WHERE session_id = ?"
                " ORDER BY idx",
                (session_id,),
            )
            return [(int(r[0]), str(r[1]), json.loads(r[2])) for r in rows]

        return await self.db.read(query)

    async def clear_results(self, session_id: str, from_idx: int = 0) -> None:
        await self.db.write(
            lambda conn: conn.execute(
                "DELETE FROM research_session_results WHERE session_id = ? AND idx >= ?",
                (session_id, from_idx),
            )
        )

    async def save_report(self, session_id: str, markdown: str, partial: bool) -> int:
        def write(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT coalesce(max(revision), 0) FROM research_session_reports"
                " WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            revision = int(row[0]) + 1
            conn.execute(
                "INSERT INTO research_session_reports (session_id, revision, markdown, partial,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (session_id, revision, markdown, int(partial), now_iso()),
            )
            return revision

        return await self.db.write(write)

    async def reports(self, session_id: str) -> list[tuple[int, str, bool]]:
        def query(conn: sqlite3.Connection) -> list[tuple[int, str, bool]]:
            rows = conn.execute(
                "SELECT revision, markdown, partial FROM research_session_reports"
                " WHERE session_id = ? ORDER BY revision",
                (session_id,),
            )
            return [(int(r[0]), str(r[1]), bool(r[2])) for r in rows]

        return await self.db.read(query)

    async def events(self, session_id: str, after: int = 0) -> list[StoredEvent]:
        def query(conn: sqlite3.Connection) -> list[StoredEvent]:
            rows = conn.execute(
                "SELECT id, event, data FROM research_session_events WHERE session_id = ?"
                " AND id > ? ORDER BY id",
                (session_id, after),
            )
            return [StoredEvent(int(r[0]), str(r[1]), json.loads(r[2])) for r in rows]

        return await self.db.read(query)

    async def delete(self, session_id: str) -> None:
        await self.db.write(
            lambda conn: conn.execute("DELETE FROM research_sessions WHERE id = ?", (session_id,))
        )

    async def purge_expired(self, keep: set[str]) -> list[str]:
        """Delete expired sessions (with their results, events and reports), except `keep`."""

        def write(conn: sqlite3.Connection) -> list[str]:
            ids = [
                str(r[0])
                for r in conn.execute(
                    "SELECT id FROM research_sessions WHERE expires_at <= ?", (time.time(),)
                )
                if str(r[0]) not in keep
            ]
            for session_id in ids:
                conn.execute("DELETE FROM research_sessions WHERE id = ?", (session_id,))
            return ids

        return await self.db.write(write)

    async def executing(self) -> list[SessionRow]:
        def query(conn: sqlite3.Connection) -> list[SessionRow]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM research_sessions WHERE phase = 'executing'"
                " ORDER BY created_at"
            )
            return [SessionRow.of(r) for r in rows]

        return await self.db.read(query)


def _get(conn: sqlite3.Connection, session_id: str) -> SessionRow:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM research_sessions WHERE id = ?", (session_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"Session {session_id!r} not found")
    return SessionRow.of(row)
