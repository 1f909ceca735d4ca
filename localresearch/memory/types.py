"""What memory search returns, shared by chat, research and the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SearchHit:
    """One chunk that matched: enough to quote it and to open it at file:line."""

    file: str  # path relative to its source root (workspace files: relative to the workspace)
    path: str  # absolute path on disk
    content: str
    score: float
    line_start: int
    line_end: int
    heading: str = ""  # heading path, e.g. "Notes > Rust > Async"
    chunk_id: int = 0
    kind: str = "note"  # memory/kinds.py: "note" (the user's), or "log", "digest", "heartbeat"
    page: int | None = None  # PDFs: the page the chunk is on


class MemorySearcher(Protocol):
    """The one call other parts of the core need from the memory index."""

    async def search(self, query: str, limit: int = 10) -> list[SearchHit]:
        """The user's own notes only: what the daemon wrote (logs, digests) is never evidence."""
        ...
