"""Bringing the index up to date with the sources: incremental by content hash, in batches.

Runs in a worker thread. Reading, hashing, extracting and chunking happen here; every write goes
through `db.write_sync` in batches, so the event loop and the readers are never held up.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localresearch.errors import LocalResearchError
from localresearch.memory.chunking import Chunk, chunk_blocks
from localresearch.memory.extract import extract_blocks, looks_binary
from localresearch.memory.scan import Found, Skipped, walk_source
from localresearch.store import Database

log = logging.getLogger(__name__)

BATCH_CHUNKS = 4000
BATCH_FILES = 500
MAX_SKIPPED_LISTED = 200

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SourceSpec:
    """A folder (or file) to index; `globs` restrict which files count."""

    path: Path
    globs: tuple[str, ...] = ()


@dataclass
class ReindexReport:
    """What one pass changed, in files and chunks, and what it left out and why."""

    files_added: int = 0
    files_updated: int = 0
    files_removed: int = 0
    files_unchanged: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    skipped_total: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def skip(self, item: Skipped) -> None:
        self.skipped_total += 1
        self.skipped_reasons[item.reason.split(" (")[0]] += 1
        if len(self.skipped) < MAX_SKIPPED_LISTED:
            self.skipped.append(item)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.files_added,
            "updated": self.files_updated,
            "removed": self.files_removed,
            "unchanged": self.files_unchanged,
            "skipped": self.skipped_total,
            "chunks_added": self.chunks_added,
            "chunks_removed": self.chunks_removed,
            "skipped_reasons": dict(self.skipped_reasons),
            "skipped_files": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Prepared:
    found: Found
    source: str
    digest: str
    chunks: list[Chunk] | None  # None: content unchanged, only the signature moved


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Indexer:
    """Synchronous indexing against the daemon's database (call from a worker thread)."""

    def __init__(self, db: Database, chunk_chars: int = 1200, chunk_overlap: int = 150) -> None:
        self.db = db
        self.chunk_chars = chunk_chars
        self.chunk_overlap = chunk_overlap
        self.cancelled = threading.Event()

    def _known(self) -> dict[str, tuple[int, str, int, int]]:
        def read(conn: sqlite3.Connection) -> dict[str, tuple[int, str, int, int]]:
            rows = conn.execute("SELECT id, path, hash, size, mtime_ns FROM memory_files")
            return {r["path"]: (r["id"], r["hash"], r["size"], r["mtime_ns"]) for r in rows}

        return self.db.read_sync(read)

    def sync(
        self,
        sources: Iterable[SourceSpec],
        *,
        force: bool = False,
        progress: Progress | None = None,
    ) -> ReindexReport:
        """Index new and changed files, drop deleted ones; return what changed."""
        import time

        started = time.perf_counter()
        report = ReindexReport()
        known = self._known()
        seen: set[str] = set()
        candidates: list[tuple[str, Found]] = []
        for source in sources:
            for item in walk_source(source.path, source.globs):
                if isinstance(item, Skipped):
                    report.skip(item)
                    continue
                key = str(item.path)
                if key in seen:
                    continue
                seen.add(key)
                old = known.get(key)
                if old and not force and old[2] == item.size and old[3] == item.mtime_ns:
                    report.files_unchanged += 1
                    continue
                candidates.append((str(source.path), item))
        gone = [(path, row[0]) for path, row in known.items() if path not in seen]
        if gone:
            report.files_removed = len(gone)
            report.chunks_removed += self.db.write_sync(
                lambda conn: _delete_files(conn, [file_id for _, file_id in gone])
            )
        batch: list[_Prepared] = []
        dropped: list[int] = []
        batch_chunks = 0
        total = len(candidates)
        for done, (source_path, found) in enumerate(candidates, start=1):
            if self.cancelled.is_set():
                break
            old = known.get(str(found.path))
            prepared = self._prepare(source_path, found, old, force, report)
            if prepared is None and old is not None:
                dropped.append(old[0])  # indexed before, unreadable or binary now
            if prepared is not None:
                batch.append(prepared)
                batch_chunks += len(prepared.chunks or ())
            if batch_chunks >= BATCH_CHUNKS or len(batch) >= BATCH_FILES:
                self._flush(batch, known, report)
                batch, batch_chunks = [], 0
            if progress is not None:
                progress(done, total, found.rel)
        if batch:
            self._flush(batch, known, report)
        if dropped:
            report.files_removed += len(dropped)
            report.chunks_removed += self.db.write_sync(lambda conn: _delete_files(conn, dropped))
        if report.files_added or report.files_updated or report.files_removed or force:
            stamp = _now()
            self.db.write_sync(
                lambda conn: conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('memory.last_indexed', ?)",
                    (stamp,),
                )
            )
        report.seconds = time.perf_counter() - started
        return report

    def _prepare(
        self,
        source: str,
        found: Found,
        old: tuple[int, str, int, int] | None,
        force: bool,
        report: ReindexReport,
    ) -> _Prepared | None:
        try:
            data = found.path.read_bytes()
        except OSError as exc:
            report.skip(Skipped(str(found.path), f"unreadable: {exc.strerror or exc}"))
            return None
        if found.path.suffix.lower() != ".pdf" and looks_binary(data):
            report.skip(Skipped(str(found.path), "binary content"))
            return None
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        if old is not None and old[1] == digest and not force:
            report.files_unchanged += 1
            return _Prepared(found, source, digest, None)
        try:
            blocks = extract_blocks(found.path, data)
        except LocalResearchError as exc:
            report.skip(Skipped(str(found.path), exc.message))
            return None
        except Exception as exc:  # a parser bug must not stop the whole pass
            log.warning("could not extract %s: %r", found.path, exc)
            report.skip(Skipped(str(found.path), f"could not extract text: {exc}"))
            return None
        chunks = chunk_blocks(blocks, self.chunk_chars, self.chunk_overlap)
        return _Prepared(found, source, digest, chunks)

    def _flush(
        self,
        batch: list[_Prepared],
        known: dict[str, tuple[int, str, int, int]],
        report: ReindexReport,
    ) -> None:
        stamp = _now()

        def write(conn: sqlite3.Connection) -> tuple[int, int]:
            added = removed = 0
            for item in batch:
                key = str(item.found.path)
                old = known.get(key)
                if item.chunks is None and old is not None:
                    conn.execute(
                        "UPDATE memory_files SET size = ?, mtime_ns = ? WHERE id = ?",
                        (item.found.size, item.found.mtime_ns, old[0]),
                    )
                    continue
                chunks = item.chunks or []
                if old is not None:
                    cursor = conn.execute("DELETE FROM memory_chunks WHERE file_id = ?", (old[0],))
                    removed += max(cursor.rowcount, 0)
                    conn.execute(
                        "UPDATE memory_files SET source = ?, rel = ?, hash = ?, size = ?,"
                        " mtime_ns = ?, chunks = ?, indexed_at = ? WHERE id = ?",
                        (
                            item.source,
                            item.found.rel,
                            item.digest,
                            item.found.size,
                            item.found.mtime_ns,
                            len(chunks),
                            stamp,
                            old[0],
                        ),
                    )
                    file_id = old[0]
                else:
                    cursor = conn.execute(
                        "INSERT INTO memory_files (path, source, rel, hash, size, mtime_ns,"
                        " chunks, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            key,
                            item.source,
                            item.found.rel,
                            item.digest,
                            item.found.size,
                            item.found.mtime_ns,
                            len(chunks),
                            stamp,
                        ),
                    )
                    file_id = int(cursor.lastrowid or 0)
                conn.executemany(
                    "INSERT INTO memory_chunks (file_id, heading, content, line_start, line_end)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(file_id, c.heading, c.content, c.line_start, c.line_end) for c in chunks],
                )
                added += len(chunks)
            return added, removed

        added, removed = self.db.write_sync(write)
        report.chunks_added += added
        report.chunks_removed += removed
        for item in batch:
            if item.chunks is None:
                continue
            if str(item.found.path) in known:
                report.files_updated += 1
            else:
                report.files_added += 1

    def remove_source(self, source: str) -> int:
        """Drop every file indexed from `source` right away; returns the files removed."""

        def write(conn: sqlite3.Connection) -> int:
            rows = conn.execute("SELECT id FROM memory_files WHERE source = ?", (source,))
            ids = [r[0] for r in rows]
            _delete_files(conn, ids)
            return len(ids)

        return self.db.write_sync(write)


def _delete_files(conn: sqlite3.Connection, file_ids: list[int]) -> int:
    """Delete files and their chunks (the FTS rows go with them through the trigger)."""
    removed = 0
    for file_id in file_ids:
        cursor = conn.execute("DELETE FROM memory_chunks WHERE file_id = ?", (file_id,))
        removed += max(cursor.rowcount, 0)
        conn.execute("DELETE FROM memory_files WHERE id = ?", (file_id,))
    return removed
