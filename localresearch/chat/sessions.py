"""Chat sessions in SQLite: created, listed, read with their messages, deleted, appended to."""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

from localresearch.errors import InvalidRequest, NotFound
from localresearch.events import utc_now_iso
from localresearch.providers.base import Message
from localresearch.store import Database

HISTORY_MESSAGES = 40  # earlier turns a model sees (the newest ones)


@dataclass(frozen=True)
class StoredMessage:
    role: str
    content: str
    model: str = ""
    tokens: dict[str, int] | None = None
    tools_used: list[dict[str, Any]] | None = None
    citations: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class SessionMessage:
    """One stored turn, as read back (tokens, tools and citations as recorded)."""

    id: int
    role: str
    content: str
    model: str | None
    tokens: dict[str, Any]
    tools_used: list[Any]
    citations: list[Any]
    created_at: str


@dataclass(frozen=True)
class ChatSession:
    """A conversation; `messages` only when read with them."""

    id: str
    title: str
    model: str | None
    created_at: str
    updated_at: str
    message_count: int
    messages: list[SessionMessage] | None = None


def _session(row: sqlite3.Row, messages: list[SessionMessage] | None = None) -> ChatSession:
    return ChatSession(
        id=row["id"],
        title=row["title"],
        model=row["model"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        message_count=row["message_count"],
        messages=messages,
    )


_SESSION_SELECT = """
    SELECT s.*, (SELECT COUNT(*) FROM chat_messages m WHERE m.session_id = s.id) AS message_count
    FROM chat_sessions s
"""


def check_session_id(session_id: str) -> str:
    """Session ids are uuid hex strings; anything else cannot exist."""
    if not isinstance(session_id, str) or not session_id.strip():
        raise InvalidRequest("session_id must be a non-empty string")
    return session_id.strip()


class SessionStore:
    """All session reads and writes (writes through the one writer thread)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, title: str = "", model: str = "") -> ChatSession:
        session_id = uuid.uuid4().hex
        now = utc_now_iso()

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO chat_sessions (id, title, model, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (session_id, title.strip()[:200], model, now, now),
            )

        await self.db.write(insert)
        return await self.get(session_id, with_messages=False)

    async def list_page(self, limit: int = 50, offset: int = 0) -> tuple[list[ChatSession], int]:
        def query(conn: sqlite3.Connection) -> tuple[list[ChatSession], int]:
            rows = conn.execute(
                _SESSION_SELECT + " ORDER BY s.updated_at DESC, s.rowid DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
            total = conn.execute("SELECT COUNT(*) FROM chat_sessions").fetchone()[0]
            return [_session(r) for r in rows], int(total)

        return await self.db.read(query)

    async def exists(self, session_id: str) -> bool:
        def query(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT 1 FROM chat_sessions WHERE id = ?", (session_id,))
            return row.fetchone() is not None

        return await self.db.read(query)

    async def get(self, session_id: str, *, with_messages: bool = True) -> ChatSession:
        def query(conn: sqlite3.Connection) -> ChatSession | None:
            row = conn.execute(_SESSION_SELECT + " WHERE s.id = ?", (session_id,)).fetchone()
            if row is None:
                return None
            if not with_messages:
                return _session(row)
            sql = "SELECT * FROM chat_messages WHERE session_id = ? ORDER BY id"
            return _session(row, [_message(m) for m in conn.execute(sql, (session_id,))])

        session = await self.db.read(query)
        if session is None:
            raise NotFound(f"No such session: {session_id}")
        return session

    async def delete(self, session_id: str) -> None:
        def remove(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM chat_sessions WHERE id = ?", (session_id,)).rowcount

        if not await self.db.write(remove):
            raise NotFound(f"No such session: {session_id}")

    async def history(self, session_id: str, limit: int = HISTORY_MESSAGES) -> list[Message]:
        """The newest turns, oldest first, as provider messages; NotFound if the session does
        not exist (checked in the same read: one trip to a reader thread before a chat starts)."""

        def query(conn: sqlite3.Connection) -> list[Message] | None:
            if conn.execute("SELECT 1 FROM chat_sessions WHERE id = ?", (session_id,)).fetchone():
                rows = conn.execute(
                    "SELECT role, content FROM chat_messages WHERE session_id = ? "
                    "ORDER BY id DESC LIMIT ?",
                    (session_id, limit),
                ).fetchall()
                return [Message(r["role"], r["content"]) for r in reversed(rows)]
            return None

        history = await self.db.read(query)
        if history is None:
            raise NotFound(f"No such session: {session_id}")
        return history

    async def append(self, session_id: str, messages: list[StoredMessage]) -> None:
        """Add one exchange; the session's title is its first question."""
        now = utc_now_iso()

        def insert(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT title FROM chat_sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"No such session: {session_id}")
            for m in messages:
                conn.execute(
                    "INSERT INTO chat_messages (session_id, role, content, model, tokens, "
                    "tools_used, citations, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        session_id,
                        m.role,
                        m.content,
                        m.model,
                        json.dumps(m.tokens or {}),
                        json.dumps(m.tools_used or []),
                        json.dumps(m.citations or []),
                        now,
                    ),
                )
            title = row["title"]
            if not title:
                first = next((m.content for m in messages if m.role == "user"), "")
                title = " ".join(first.split())[:80]
            model = next((m.model for m in messages if m.model), "")
            conn.execute(
                "UPDATE chat_sessions SET updated_at = ?, title = ?, "
                "model = CASE WHEN ? != '' THEN ? ELSE model END WHERE id = ?",
                (now, title, model, model, session_id),
            )

        await self.db.write(insert)


def _message(row: sqlite3.Row) -> SessionMessage:
    return SessionMessage(
        id=row["id"],
        role=row["role"],
        content=row["content"],
        model=row["model"],
        tokens=json.loads(row["tokens"]),
        tools_used=json.loads(row["tools_used"]),
        citations=json.loads(row["citations"]),
        created_at=row["created_at"],
    )
