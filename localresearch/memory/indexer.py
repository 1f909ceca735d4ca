"""Bringing the index up to date with the sources: incremental by content hash, in batches.

Runs in a worker thread. Reading, hashing, extracting and chunking happen here; every write goes
through `db.write_sync` in batches, so the event loop and the readers are never held up.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localresearch.memory.chunking import Chunk
from localresearch.memory.prepare import Outcome, prepare_file, prepare_files, warm_up
from localresearch.memory.scan import Found, Skipped, walk_source
from localresearch.store import Database

log = logging.getLogger(__name__)

BATCH_CHUNKS = 1000
BATCH_FILES = 500
MAX_SKIPPED_LISTED = 200

_NEXT_FILE_ID = "SELECT coalesce(max(id), 0) + 1 FROM memory_files"
_NEXT_CHUNK_ID = "SELECT coalesce(max(id), 0) + 1 FROM memory_chunks"

PARALLEL_MIN_FILES = 500
PARALLEL_BATCH = 64

Progress = Callable[[int, int, str], None]
__all__ = ["Indexer", "Outcome", "ReindexReport", "SourceSpec", "prepare_file", "prepare_files"]


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

    def __init__(
        self,
        db: Database,
        chunk_chars: int = 1200,
        chunk_overlap: int = 150,
        workers: int | None = None,
    ) -> None:
        self.db = db
        self.chunk_chars = chunk_chars
        self.chunk_overlap = chunk_overlap
        # Parsing processes for big passes: the cores left once the writer thread has one.
        self.workers = min(4, max(1, (os.cpu_count() or 2) - 1)) if workers is None else workers
        self.force = False
        self.cancelled = threading.Event()
        self._pool: ProcessPoolExecutor | None = None
        self._warm: list[Future[None]] = []  # done once the worker processes are up

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
        try:
            return self._sync(sources, force=force, progress=progress)
        finally:
            pool, self._pool = self._pool, None
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _start_pool(self) -> None:
        """Start the worker processes now, so that spawning them (~0.1-0.3 s) overlaps the
        rest of the walk instead of delaying the first batch."""
        if self.workers < 1 or self._pool is not None:
            return
        try:
            pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn")
            )
            self._warm = [pool.submit(warm_up) for _ in range(self.workers)]
        except (OSError, RuntimeError) as exc:
            log.warning("memory indexing without worker processes: %s", exc)
            return
        self._pool = pool

    def _sync(
        self, sources: Iterable[SourceSpec], *, force: bool, progress: Progress | None
    ) -> ReindexReport:
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
                if len(candidates) == PARALLEL_MIN_FILES:
                    self._start_pool()
        gone = [(path, row[0]) for path, row in known.items() if path not in seen]
        if gone:
            report.files_removed = len(gone)
            report.chunks_removed += self.db.write_sync(
                lambda conn: _delete_files(conn, [file_id for _, file_id in gone])
            )
        batch: list[_Prepared] = []
        dropped: list[int] = []
        batch_chunks = 0
        # One batch is written on the writer thread while the next one is read and chunked here.
        pending: tuple[Future[tuple[int, int]], list[_Prepared]] | None = None

        def settle() -> None:
            nonlocal pending
            if pending is not None:
                future, items = pending
                pending = None
                self._account(items, known, report, future.result())

        total = len(candidates)
        self.force = force
        with contextlib.closing(self._outcomes(candidates, known)) as outcomes:
            for done, ((source_path, found), outcome) in enumerate(
                zip(candidates, outcomes, strict=False), start=1
            ):
                if self.cancelled.is_set():
                    break  # closing the outcomes stops the worker processes
                old = known.get(str(found.path))
                prepared = self._prepare(source_path, found, outcome, report)
                if prepared is None and old is not None:
                    dropped.append(old[0])  # indexed before, unreadable or binary now
                if prepared is not None:
                    batch.append(prepared)
                    batch_chunks += len(prepared.chunks or ())
                if batch_chunks >= BATCH_CHUNKS or len(batch) >= BATCH_FILES:
                    settle()
                    pending = (self._submit(batch, known), batch)
                    batch, batch_chunks = [], 0
                if progress is not None:
                    progress(done, total, found.rel)
        settle()
        if batch:
            pending = (self._submit(batch, known), batch)
            settle()
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
        outcome: Outcome,
        report: ReindexReport,
    ) -> _Prepared | None:
        digest, result = outcome
        if isinstance(result, str):
            report.skip(Skipped(str(found.path), result))
            return None
        if result is None:
            report.files_unchanged += 1
        return _Prepared(found, source, digest, result)

    def _outcomes(
        self, candidates: list[tuple[str, Found]], known: dict[str, tuple[int, str, int, int]]
    ) -> Generator[Outcome, None, None]:
        """Read, hash and chunk each candidate, in order: in worker processes for a big pass
        (so that parsing uses another core while this thread feeds the writer), else here."""
        jobs = [
            (
                str(found.path),
                None if self.force else (known.get(str(found.path)) or (0, ""))[1],
                self.chunk_chars,
                self.chunk_overlap,
            )
            for _, found in candidates
        ]
        pool = self._pool
        if len(jobs) < PARALLEL_MIN_FILES or pool is None:
            yield from (prepare_file(*job) for job in jobs)
            return
        batches = [jobs[i : i + PARALLEL_BATCH] for i in range(0, len(jobs), PARALLEL_BATCH)]
        in_pool: dict[int, Future[list[Outcome]]] = {}
        here: dict[int, list[Outcome]] = {}
        free = 0  # the first batch handed to no one yet
        current = 0
        try:
            for current in range(len(batches)):
                if current in here:
                    yield from here.pop(current)
                    continue
                if current >= free and not all(f.done() for f in self._warm):
                    # The workers are still starting (spawning costs ~0.1-0.3 s): this thread
                    # prepares the first batches itself, so the writer starts at once.
                    free = current + 1
                    yield from prepare_files(batches[current])
                    continue
                # A few batches in flight: the workers stay busy, memory stays bounded.
                free = max(free, current)
                while len(in_pool) < 2 * self.workers + 1 and free < len(batches):
                    in_pool[free] = pool.submit(prepare_files, batches[free])
                    free += 1
                future = in_pool.pop(current)
                if not future.done() and free < len(batches):
                    # The first batch handed to the workers takes a moment: one more here.
                    here[free] = prepare_files(batches[free])
                    free += 1
                yield from future.result()
        except (BrokenProcessPool, OSError, RuntimeError) as exc:
            # No worker processes here (e.g. a main module without a __main__ guard): do the
            # rest in this thread.
            log.warning("memory indexing without worker processes: %s", exc)
            for index in range(current, len(batches)):
                yield from here.pop(index, None) or prepare_files(batches[index])
        finally:
            for future in in_pool.values():  # stopped early (cancelled): drop queued work
                future.cancel()

    def _submit(
        self, batch: list[_Prepared], known: dict[str, tuple[int, str, int, int]]
    ) -> Future[tuple[int, int]]:
        """Queue one transaction writing a batch of files; returns chunks (added, removed)."""
        stamp = _now()

        def write(conn: sqlite3.Connection) -> tuple[int, int]:
            # New files and every chunk go in with one executemany per table (ids assigned
            # here): per-file statements cost more than the FTS5 inserts themselves.
            removed = 0
            next_file = int(conn.execute(_NEXT_FILE_ID).fetchone()[0])
            next_chunk = int(conn.execute(_NEXT_CHUNK_ID).fetchone()[0])
            files: list[tuple[Any, ...]] = []
            chunk_rows: list[tuple[int, int, int, int]] = []
            fts_rows: list[tuple[int, str, str]] = []
            for item in batch:
                key = str(item.found.path)
                old = known.get(key)
                found = item.found
                if item.chunks is None and old is not None:
                    conn.execute(
                        "UPDATE memory_files SET size = ?, mtime_ns = ? WHERE id = ?",
                        (found.size, found.mtime_ns, old[0]),
                    )
                    continue
                chunks = item.chunks or []
                facts = (item.source, found.rel, item.digest, found.size, found.mtime_ns)
                if old is not None:
                    removed += _delete_chunks(conn, old[0])
                    conn.execute(
                        "UPDATE memory_files SET source = ?, rel = ?, hash = ?, size = ?,"
                        " mtime_ns = ?, chunks = ?, indexed_at = ? WHERE id = ?",
                        (*facts, len(chunks), stamp, old[0]),
                    )
                    file_id = old[0]
                else:
                    file_id = next_file
                    next_file += 1
                    files.append((file_id, key, *facts, len(chunks), stamp))
                for chunk in chunks:
                    chunk_rows.append((next_chunk, file_id, chunk.line_start, chunk.line_end))
                    fts_rows.append((next_chunk, chunk.heading, chunk.content))
                    next_chunk += 1
            conn.executemany(
                "INSERT INTO memory_files (id, path, source, rel, hash, size, mtime_ns, chunks,"
                " indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                files,
            )
            conn.executemany(
                "INSERT INTO memory_chunks (id, file_id, line_start, line_end) VALUES (?, ?, ?, ?)",
                chunk_rows,
            )
            conn.executemany(
                "INSERT INTO memory_fts (rowid, heading, content) VALUES (?, ?, ?)", fts_rows
            )
            return len(chunk_rows), removed

        return self.db.submit_write(write)

    @staticmethod
    def _account(
        batch: list[_Prepared],
        known: dict[str, tuple[int, str, int, int]],
        report: ReindexReport,
        result: tuple[int, int],
    ) -> None:
        added, removed = result
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
    """Delete files and their chunks (and their FTS rows)."""
    removed = 0
    for file_id in file_ids:
        removed += _delete_chunks(conn, file_id)
        conn.execute("DELETE FROM memory_files WHERE id = ?", (file_id,))
    return removed


def _delete_chunks(conn: sqlite3.Connection, file_id: int) -> int:
    conn.execute(
        "DELETE FROM memory_vectors WHERE chunk_id IN"
        " (SELECT id FROM memory_chunks WHERE file_id = ?)",
        (file_id,),
    )
    conn.execute(
        "DELETE FROM memory_fts WHERE rowid IN (SELECT id FROM memory_chunks WHERE file_id = ?)",
        (file_id,),
    )
    cursor = conn.execute("DELETE FROM memory_chunks WHERE file_id = ?", (file_id,))
    return max(cursor.rowcount, 0)
