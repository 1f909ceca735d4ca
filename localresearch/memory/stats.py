"""What the memory index reports about itself: typed facts, encoded for HTTP in api/memory.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from localresearch.memory.indexer import ReindexReport
    from localresearch.memory.service import Source


@dataclass(frozen=True)
class MemoryStatus:
    """Files and chunks indexed, and whether a pass runs (the daemon's status)."""

    files_indexed: int
    chunks: int
    indexing: bool


@dataclass(frozen=True)
class SourceRemoved:
    path: str
    files_removed: int


@dataclass(frozen=True)
class VectorProgress:
    """The background embedding pass: done of total, rate and time left."""

    done: int
    total: int
    rate_per_s: float
    eta_s: float | None
    running: bool


@dataclass(frozen=True)
class EmbeddingStats:
    model: str
    vectors: int
    error: str | None
    progress: VectorProgress | None


@dataclass(frozen=True)
class FileFacts:
    size_bytes: int
    lines: int


@dataclass(frozen=True)
class DailyLogs:
    count: int
    total_size_bytes: int


@dataclass(frozen=True)
class FilesStats:
    total: int
    memory_md: FileFacts
    heartbeat_md: FileFacts
    daily_logs: DailyLogs


@dataclass(frozen=True)
class IndexStats:
    chunks: int
    chunks_by_kind: dict[str, int]
    last_indexed: str | None
    database_size_bytes: int
    indexing: bool
    compacting: bool


@dataclass(frozen=True)
class MemoryStats:
    """The index, its sources, the workspace's files, the last pass and the embeddings."""

    workspace: str
    files: FilesStats
    index: IndexStats
    sources: list[Source]
    last_reindex: ReindexReport | None
    embeddings: EmbeddingStats | None
