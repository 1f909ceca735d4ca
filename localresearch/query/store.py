"""Reads and writes of background queries (query_runs), through the database's one writer."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from localresearch.events import utc_now_iso
from localresearch.store import Database

ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class QueryRun:
    id: str
    job_id: str | None
    version: str
    request: dict[str, Any]
    status: str  # queued, running, complete, error, canceled
    result: dict[str, Any] | None
    error: str | None
    owner: str | None
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> QueryRun:
        return cls(
            id=row["id"],
            job_id=row["job_id"],
            version=row["version"],
            request=json.loads(row["request"]),
            status=row["status"],
            result=json.loads(row["result"]) if row["result"] else None,
            error=row["error"],
            owner=row["owner"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


class QueryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, run_id: str, version: str, request: dict[str, Any], owner: str | None
    ) -> None:
        now = utc_now_iso()
        payload = json.dumps(request, ensure_ascii=False)

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO query_runs (id, version, request, status, owner, created_at,"
                " updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                (run_id, version, payload, owner, now, now),
            )

        await self.db.write(insert)

    async def started(self, run_id: str, job_id: str) -> None:
        def update(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE query_runs SET job_id = ?, status = 'running', updated_at = ?"
                " WHERE id = ? AND status IN ('queued', 'running')",
                (job_id, utc_now_iso(), run_id),
            )

        await self.db.write(update)

    async def finish(
        self,
        run_id: str,
        status: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Record the end once: False if the run had already ended (e.g. canceled meanwhile)."""
        payload = json.dumps(result, ensure_ascii=False) if result is not None else None

        def update(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE query_runs SET status = ?, result = ?, error = ?, updated_at = ?"
                " WHERE id = ? AND status IN ('queued', 'running')",
                (status, payload, error, utc_now_iso(), run_id),
            )
            return cursor.rowcount == 1

        ended: bool = await self.db.write(update)
        return ended

    async def get(self, run_id: str) -> QueryRun | None:
        def select(conn: sqlite3.Connection) -> sqlite3.Row | None:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM query_runs WHERE id = ?", (run_id,)
            ).fetchone()
            return row

        row = await self.db.read(select)
        return QueryRun.from_row(row) if row is not None else None

    async def active(self) -> list[QueryRun]:
        def select(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT * FROM query_runs WHERE status IN ('queued', 'running') ORDER BY created_at"
            ).fetchall()

        return [QueryRun.from_row(r) for r in await self.db.read(select)]
