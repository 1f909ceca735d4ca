"""The table of background queries: each outlives a daemon restart with its request and result."""

from __future__ import annotations

import sqlite3

from localresearch.store.migrations import Migration


def _runs(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE query_runs (
            id TEXT PRIMARY KEY,
            job_id TEXT,
            version TEXT NOT NULL,
            request TEXT NOT NULL,
            status TEXT NOT NULL,
            result TEXT,
            error TEXT,
            owner TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX query_runs_status ON query_runs (status)")


MIGRATIONS: list[Migration] = [("query.001_runs", _runs)]
