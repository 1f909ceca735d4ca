"""Tables of the access layer: API keys, stored only as a hash of the secret."""

from __future__ import annotations

import sqlite3

from localresearch.store.migrations import Migration


def _keys(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            prefix TEXT NOT NULL,
            hint TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )
        """
    )


MIGRATIONS: list[Migration] = [("access.001_api_keys", _keys)]
