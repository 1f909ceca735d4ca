"""Tables of research sessions: the session, its plan's task results, its events, its reports."""

from __future__ import annotations

import sqlite3

from localresearch.store.migrations import Migration

_STATEMENTS = """
        CREATE TABLE research_sessions (
            id TEXT PRIMARY KEY,
            owner TEXT,
            phase TEXT NOT NULL,
            topic TEXT NOT NULL DEFAULT '',
            questions TEXT NOT NULL DEFAULT '',
            feedback TEXT NOT NULL DEFAULT '',
            report_plan TEXT NOT NULL DEFAULT '',
            tasks TEXT NOT NULL DEFAULT '[]',
            final_report TEXT NOT NULL DEFAULT '',
            settings TEXT NOT NULL DEFAULT '{}',
            progress INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            last_event_id INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX research_sessions_owner ON research_sessions (owner, created_at);
        CREATE INDEX research_sessions_expiry ON research_sessions (expires_at);
        CREATE TABLE research_session_results (
            session_id TEXT NOT NULL REFERENCES research_sessions (id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            query TEXT NOT NULL,
            result TEXT NOT NULL,
            PRIMARY KEY (session_id, idx)
        );
        CREATE TABLE research_session_events (
            session_id TEXT NOT NULL REFERENCES research_sessions (id) ON DELETE CASCADE,
            id INTEGER NOT NULL,
            event TEXT NOT NULL,
            data TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (session_id, id)
        );
        CREATE TABLE research_session_reports (
            session_id TEXT NOT NULL REFERENCES research_sessions (id) ON DELETE CASCADE,
            revision INTEGER NOT NULL,
            markdown TEXT NOT NULL,
            partial INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            PRIMARY KEY (session_id, revision)
        )
"""


def _initial(conn: sqlite3.Connection) -> None:
    for statement in _STATEMENTS.split(";"):
        if statement.strip():
            conn.execute(statement)


MIGRATIONS: list[Migration] = [("research_sessions.001_initial", _initial)]
