"""API keys: made here, shown once, stored only as a SHA-256 hash; checked from memory."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import string
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from localresearch.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from localresearch.store import Database

DEFAULT_PREFIX = "lr_"
SECRET_CHARS = 32  # the research-sessions API's format: "dr_" + 32 characters
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class KeyRecord:
    """A key as stored: everything but the secret."""

    id: str
    name: str
    role: str
    prefix: str
    hint: str  # the prefix and the last four characters, to tell keys apart
    created_at: str
    revoked_at: str | None = None


def digest(secret: str) -> str:
    """The stored form of a secret. Keys are 190 bits of randomness, so one fast hash is
    enough (no password stretching needed)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_CHARS))


class KeyStore:
    """The api_keys table with an in-memory index by hash (a check costs one SHA-256)."""

    def __init__(self, db: Database | None, path: Path) -> None:
        self.db = db
        self.path = path
        self._by_hash: dict[str, KeyRecord] | None = None
        self._lock = threading.Lock()

    def _load(self) -> dict[str, KeyRecord]:
        """Read the active keys once (a read-only connection: the table may not exist yet)."""
        with self._lock:
            if self._by_hash is not None:
                return self._by_hash
            found: dict[str, KeyRecord] = {}
            try:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            except sqlite3.Error:
                return found
            try:
                rows = conn.execute(
                    "SELECT id, name, role, prefix, hint, created_at, hash FROM api_keys"
                    " WHERE revoked_at IS NULL"
                ).fetchall()
            except sqlite3.Error:
                return found  # no table yet: the daemon is starting; read again next time
            finally:
                conn.close()
            for row in rows:
                found[row[6]] = KeyRecord(*row[:6])
            self._by_hash = found
            return found

    def verify(self, secret: str) -> KeyRecord | None:
        return self._load().get(digest(secret))

    async def create(
        self, role: str, *, name: str = "", prefix: str = DEFAULT_PREFIX
    ) -> tuple[KeyRecord, str]:
        """A new key and its secret (the only time the secret exists outside the caller)."""
        if not prefix or len(prefix) > 16 or not all(c in _ALPHABET + "_-" for c in prefix):
            raise InvalidRequest("prefix must be 1-16 letters, digits, '_' or '-'")
        if not role:
            raise InvalidRequest("role must not be empty")
        secret = new_secret(prefix)
        record = KeyRecord(
            id=f"key_{uuid.uuid4().hex[:12]}",
            name=name or role,
            role=role,
            prefix=prefix,
            hint=f"{prefix}…{secret[-4:]}",
            created_at=_now(),
        )
        hashed = digest(secret)

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO api_keys (id, name, role, prefix, hint, hash, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*_fields(record), hashed, record.created_at),
            )

        assert self.db is not None
        await self.db.write(insert)
        self._by_hash = None  # read again on the next check
        return record, secret

    async def list(self, *, revoked: bool = False) -> list[KeyRecord]:
        def query(conn: sqlite3.Connection) -> list[KeyRecord]:
            sql = "SELECT id, name, role, prefix, hint, created_at, revoked_at FROM api_keys"
            if not revoked:
                sql += " WHERE revoked_at IS NULL"
            return [KeyRecord(*row) for row in conn.execute(sql + " ORDER BY created_at, id")]

        assert self.db is not None
        return await self.db.read(query)

    async def revoke(self, key_id: str) -> KeyRecord:
        """Stop accepting a key at once (the row stays, marked revoked)."""
        now = _now()

        def update(conn: sqlite3.Connection) -> tuple[str, ...] | None:
            row = conn.execute(
                "SELECT id, name, role, prefix, hint, created_at, hash FROM api_keys"
                " WHERE id = ? AND revoked_at IS NULL",
                (key_id,),
            ).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (now, key_id))
            return tuple(row)

        assert self.db is not None
        row = await self.db.write(update)
        if row is None:
            raise NotFound(f"No active key {key_id!r}")
        self._by_hash = None
        key, name, role, prefix, hint, created = row[:6]
        return KeyRecord(key, name, role, prefix, hint, created, revoked_at=now)


def _fields(record: KeyRecord) -> tuple[str, str, str, str, str]:
    return (record.id, record.name, record.role, record.prefix, record.hint)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
