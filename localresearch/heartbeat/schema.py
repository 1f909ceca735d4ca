"""The heartbeat's tables: when it last ran, when it runs next, and what is still in flight."""

from __future__ import annotations

import sqlite3

from localresearch.store.migrations import Migration


def _state(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE heartbeat_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            last_run TEXT,
            next_run TEXT,
            last_result TEXT,
            paused INTEGER NOT NULL DEFAULT 0,
            running_since TEXT,
            malformed_digest TEXT
        )"""
    )
    conn.execute("INSERT INTO heartbeat_state (id) VALUES (1)")
    conn.execute(
        """CREATE TABLE heartbeat_failures (
            task_key TEXT PRIMARY KEY,
            attempts INTEGER NOT NULL,
            last_error TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    conn.execute(
        """CREATE TABLE heartbeat_jobs (
            job_id TEXT PRIMARY KEY,
            task_text TEXT NOT NULL,
            started_at TEXT NOT NULL
        )"""
    )


MIGRATIONS: list[Migration] = [("heartbeat.001_state", _state)]
