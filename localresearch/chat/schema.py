"""Chat sessions and their messages (ordered migrations, never edited once shipped)."""

from __future__ import annotations

import sqlite3

from localresearch.store.migrations import Migration


def _sessions(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE chat_sessions (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    conn.execute(
        """CREATE TABLE chat_messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            tokens TEXT NOT NULL DEFAULT '{}',
            tools_used TEXT NOT NULL DEFAULT '[]',
            citations TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX chat_messages_by_session ON chat_messages (session_id, id)")
    conn.execute("CREATE INDEX chat_sessions_by_update ON chat_sessions (updated_at)")


MIGRATIONS: list[Migration] = [("chat.001_sessions", _sessions)]
