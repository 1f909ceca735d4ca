"""Schema changes: an ordered list of small named migrations, recorded in the database."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

Migration = tuple[str, Callable[[sqlite3.Connection], None]]


def _core_meta(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _all_migrations() -> list[Migration]:
    """Each part of the core contributes its own ordered list; their order here is fixed."""
    from localresearch.store.schemas import SCHEMAS

    migrations: list[Migration] = [("core.001_meta", _core_meta)]
    for part in SCHEMAS:
        migrations.extend(part)
    return migrations


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    """Apply, in order, each migration not yet recorded; return the names applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    applied: list[str] = []
    for name, migrate in _all_migrations():
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            migrate(conn)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(UTC).isoformat()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.append(name)
    return applied
