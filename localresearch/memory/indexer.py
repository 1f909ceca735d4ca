"""Bringing the index up to date with the sources: incremental by content hash, in batches.

Runs in a worker thread. Reading, hashing, extracting and chunking happen here; every write goes
through `db.write_sync` in batches, so the event loop and the readers are never held up.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import multiprocessing
import os
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from localresearch.daemon.children import die_with_parent
from localresearch.memory import kinds
from localresearch.memory.chunking import Chunk
from localresearch.memory.daily_log import LogRead, LogState, read_log
from localresearch.memory.prepare import Job, Outcome, prepare_file, prepare_files, warm_up
from localresearch.memory.rows import (
    INSERT_CHUNKS,
    INSERT_FILES,
    INSERT_FTS,
    NEXT_IDS,
    delete_chunks,
    delete_chunks_from,
    delete_files,
    fts_rows,
)
from localresearch.memory.scan import Found, Skipped, walk_source
from localresearch.memory.schema import DERIVED_TABLE, NOTES_TABLE
from localresearch.store import Database

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_BATCH_CHUNKS = 250  # small, so the writer starts almost at once; then doubling
BATCH_CHUNKS = 1000
BATCH_FILES = 500
WRITES_QUEUED = 2  # batches handed to the writer and not yet written, at most
MAX_SKIPPED_LISTED = 200
# FTS5 pages merged per transaction when compacting (~8 MB: a step takes well under 0.1 s, so
# other writes wait little), and a bound on the steps in case a step never reports "done".
COMPACT_PAGES = 2000
COMPACT_MAX_STEPS = 100_000

# A daily log the daemon keeps appending to (a chat every second, say) is read from where the
# last pass left off (memory/daily_log.py). When it must be read whole instead (rewritten, not
# UTF-8, no marked entries), background passes do that at most this often: reading and chunking
# a growing file every 2 s would take ever longer. Explicit reindexes read it at once.
DAILY_LOG_MIN_INTERVAL_S = 30.0

# Worker processes start once a pass has found this many files or prepared for this long, and
# only while preparing a chunk takes longer than PARALLEL_RATE times writing one.
PARALLEL_MIN_FILES = 500
PARALLEL_MIN_SECONDS = 0.5
PARALLEL_RATE = 1.5
PARALLEL_BATCH = 64

Progress = Callable[[int, int, str], None]
__all__ = ["Indexer", "Outcome", "ReindexReport", "SourceSpec", "prepare_file", "prepare_files"]


@dataclass(frozen=True)
class SourceSpec:
    """A folder (or file) to index; `globs` restrict which files count."""

    path: Path
    globs: tuple[str, ...] = ()
    workspace: bool = False  # the workspace: its daily logs and HEARTBEAT.md are sorted by kind


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


@dataclass
class _Prepared:
    found: Found
    source: str
    digest: str
    chunks: list[Chunk] | None  # None: content unchanged, only the signature moved


@dataclass
class _Walk:
    """How far the walk is: files found to prepare so far, and whether it saw every file."""

    found: int = 0
    finished: bool = False


def _groups(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while group := list(itertools.islice(items, size)):
        yield group


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
        self._write_seconds = 0.0  # the writer's time on this pass's batches
        self.prepared_here = 0  # files this thread prepared while worker processes were on
        # The next file and chunk ids, kept by the writer thread between a pass's batches.
        self._next_ids: tuple[int, int] | None = None
        self._roles: dict[str, str] = {}  # path -> role (kinds.py), for the workspace's files
        self._log_read_at: dict[str, float] = {}  # daily log path -> when a pass last read it
        self.deferred_logs = 0  # daily logs whose changes wait for DAILY_LOG_MIN_INTERVAL_S
        self.appended_logs = 0  # daily logs read from their resume point by the last pass
        self._logs: list[tuple[str, Found]] = []  # the changed daily logs a pass found

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
        """Start the worker processes (spawning them takes ~0.1-0.3 s; until they are up, this
        thread goes on preparing files itself)."""
        if self.workers < 1 or self._pool is not None:
            return
        try:
            pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,  # no workers left behind by a SIGKILLed daemon
                initargs=(os.getpid(),),
            )
            self._warm = [pool.submit(warm_up) for _ in range(self.workers)]
        except (OSError, RuntimeError) as exc:
            log.warning("memory indexing without worker processes: %s", exc)
            self.workers = 0
            return
        log.info("memory indexing: reading and chunking in %d worker processes", self.workers)
        self._pool = pool

    def _sync(
        self, sources: Iterable[SourceSpec], *, force: bool, progress: Progress | None
    ) -> ReindexReport:
        started = time.perf_counter()
        report = ReindexReport()
        known = self._known()
        seen: set[str] = set()
        walk = _Walk()
        self.force = force
        self._write_seconds = 0.0
        self._next_ids = None
        self._roles = {}
        self.deferred_logs = self.appended_logs = 0
        self._logs = []
        self.explicit = progress is not None
        # The walk feeds the preparation as it goes, so the writer starts after the first small
        # batch instead of after the whole tree has been listed.
        candidates = self._candidates(sources, known, seen, walk, report)
        batch: list[_Prepared] = []
        dropped: list[int] = []
        batch_chunks = 0
        limit = FIRST_BATCH_CHUNKS
        produced = written = 0  # chunks
        waited = 0.0  # seconds this thread spent waiting for the writer
        # Batches are written on the writer thread while the next ones are read and chunked here
        # (two may wait, so that neither side stalls on the other's hiccups).
        pending: deque[tuple[Future[tuple[int, int]], list[_Prepared]]] = deque()

        def settle(keep: int) -> None:
            nonlocal waited, written
            while len(pending) > keep:
                future, items = pending[0]
                before = time.perf_counter()
                result = future.result()
                waited += time.perf_counter() - before
                pending.popleft()
                written += result[0]
                self._account(items, known, report, result)

        with contextlib.closing(self._outcomes(candidates, known)) as outcomes:
            for done, ((source_path, found), outcome) in enumerate(outcomes, start=1):
                if self.cancelled.is_set():
                    break  # closing the outcomes stops the walk and the worker processes
                old = known.get(found.path)
                prepared = self._prepare(source_path, found, outcome, report)
                if prepared is None and old is not None:
                    dropped.append(old[0])  # indexed before, unreadable or binary now
                if prepared is not None:
                    batch.append(prepared)
                    batch_chunks += len(prepared.chunks or ())
                if batch_chunks >= limit or len(batch) >= BATCH_FILES:
                    settle(WRITES_QUEUED - 1)
                    produced += batch_chunks
                    pending.append((self._submit(batch, known), batch))
                    batch, batch_chunks, limit = [], 0, min(2 * limit, BATCH_CHUNKS)
                    busy = time.perf_counter() - started - waited
                    if self._needs_workers(walk.found, busy, produced, written):
                        self._start_pool()
                if progress is not None:
                    progress(done, walk.found, found.rel)
        if batch:
            pending.append((self._submit(batch, known), batch))
        settle(0)
        self._index_logs(known, report, dropped)
        if walk.finished:  # a cancelled walk has not seen every file: removals wait
            dropped.extend(row[0] for path, row in known.items() if path not in seen)
        if dropped:
            report.files_removed += len(dropped)
            report.chunks_removed += self.db.write_sync(lambda conn: delete_files(conn, dropped))
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

    def _needs_workers(self, found: int, busy: float, produced: int, written: int) -> bool:
        """Worker processes pay off only when reading and chunking, not the writer, hold the
        pass back (PDFs, big HTML): compare this thread's time per chunk with the writer's."""
        if self.workers < 1 or self._pool is not None or not written or not produced:
            return False
        if found < PARALLEL_MIN_FILES and busy < PARALLEL_MIN_SECONDS:
            return False
        return busy / produced > PARALLEL_RATE * (self._write_seconds / written)

    def _candidates(
        self,
        sources: Iterable[SourceSpec],
        known: dict[str, tuple[int, str, int, int]],
        seen: set[str],
        walk: _Walk,
        report: ReindexReport,
    ) -> Iterator[tuple[str, Found]]:
        """New and changed files (by size and mtime) as the walk finds them."""
        for source in sources:
            for item in walk_source(source.path, source.globs):
                if isinstance(item, Skipped):
                    report.skip(item)
                    continue
                key = item.path
                if key in seen:
                    continue
                seen.add(key)
                old = known.get(key)
                if old and not self.force and old[2] == item.size and old[3] == item.mtime_ns:
                    report.files_unchanged += 1
                    continue
                role = kinds.role_of(item.rel, source.workspace)
                if role:
                    self._roles[key] = role
                if role == kinds.ROLE_DAILY_LOG:
                    self._logs.append((str(source.path), item))  # after the other files
                    continue
                walk.found += 1
                yield str(source.path), item
        walk.finished = True

    def _index_logs(
        self,
        known: dict[str, tuple[int, str, int, int]],
        report: ReindexReport,
        dropped: list[int],
    ) -> None:
        """The changed daily logs: their appended tails, or (when that cannot be done) the whole
        file, each in one transaction with the point where the next pass resumes."""
        for source, found in self._logs:
            if self.cancelled.is_set():
                return
            old = known.get(found.path)
            state = None if self.force or old is None else self._log_state(old[0])
            size, overlap = self.chunk_chars, self.chunk_overlap
            read = read_log(found.path, state, size, overlap, whole=False)
            if read is not None:
                self.appended_logs += 1
            elif self._defer_log(found.path, indexed=old is not None):
                report.files_unchanged += 1
                continue
            else:
                read = read_log(found.path, None, size, overlap, whole=True)
            if read is None or read.skipped:
                report.skip(Skipped(found.path, read.skipped if read else "unreadable"))
                if old is not None:
                    dropped.append(old[0])
                continue
            rows = fts_rows(read.chunks)
            write = functools.partial(self._write_log, source, found, old, state, read, rows)
            added, removed = self.db.write_sync(write)
            report.chunks_added += added
            report.chunks_removed += removed
            if old is None:
                report.files_added += 1
            else:
                report.files_updated += 1

    def _log_state(self, file_id: int) -> LogState | None:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT log_state FROM memory_files WHERE id = ?", (file_id,))
            found = row.fetchone()
            return found[0] if found else None

        return LogState.from_json(self.db.read_sync(read))

    def _write_log(
        self,
        source: str,
        found: Found,
        old: tuple[int, str, int, int] | None,
        state: LogState | None,
        read: LogRead,
        rows: tuple[str, str],
        conn: sqlite3.Connection,
    ) -> tuple[int, int]:
        """One transaction: a daily log's new chunks in place of those they replace, its size and
        where the next pass resumes. Returns chunks (added, removed)."""
        if self._next_ids is None:
            row = conn.execute(NEXT_IDS).fetchone()
            self._next_ids = (int(row[0]), int(row[1]))
        next_file, first = self._next_ids
        stamp = _now()
        removed = 0
        if old is None:
            file_id = next_file
            next_file += 1
            facts = (file_id, found.path, source, found.rel, "", 0, 0, 0, stamp)
            conn.execute(INSERT_FILES, (json.dumps([facts]),))
        elif read.since_line is None or state is None:
            file_id = old[0]
            removed = delete_chunks(conn, file_id)
        else:
            file_id = old[0]
            removed = delete_chunks_from(conn, file_id, state.chunk, read.since_line)
        places = [
            (first + i, file_id, c.line_start, c.line_end, c.kind, c.page)
            for i, c in enumerate(read.chunks)
        ]
        if places:
            conn.execute(INSERT_CHUNKS, (json.dumps(places),))
            for table, encoded in zip((NOTES_TABLE, DERIVED_TABLE), rows, strict=True):
                if encoded != "[]":
                    conn.execute(INSERT_FTS.format(table), (first, encoded))
        after = first + len(places)
        resumed = None
        if read.resume is not None:
            offset, line = read.resume
            chunk = next(
                (first + i for i, c in enumerate(read.chunks) if c.line_start >= line), after
            )
            resumed = LogState(read.inode, offset, line, chunk, read.head)
        conn.execute(
            "UPDATE memory_files SET source = ?, rel = ?, hash = ?, size = ?, mtime_ns = ?,"
            " chunks = chunks - ? + ?, indexed_at = ?, log_state = ? WHERE id = ?",
            (
                source,
                found.rel,
                read.digest,
                read.size,
                read.mtime_ns,
                removed,
                len(places),
                stamp,
                resumed.to_json() if resumed else None,
                file_id,
            ),
        )
        self._next_ids = (next_file, after)
        return len(places), removed

    def _defer_log(self, path: str, *, indexed: bool) -> bool:
        """Whether a changed daily log that must be read whole waits (read less than
        DAILY_LOG_MIN_INTERVAL_S ago by a background pass); else it is read now, time noted."""
        now = time.monotonic()
        if indexed and not self.force and not self.explicit:
            read_at = self._log_read_at.get(path)
            if read_at is not None and now - read_at < DAILY_LOG_MIN_INTERVAL_S:
                self.deferred_logs += 1
                return True
        self._log_read_at[path] = now
        return False

    def _prepare(
        self,
        source: str,
        found: Found,
        outcome: Outcome,
        report: ReindexReport,
    ) -> _Prepared | None:
        digest, result = outcome
        if isinstance(result, str):
            report.skip(Skipped(found.path, result))
            return None
        if result is None:
            report.files_unchanged += 1
        return _Prepared(found, source, digest, result)

    def _outcomes(
        self, candidates: Iterator[tuple[str, Found]], known: dict[str, tuple[int, str, int, int]]
    ) -> Generator[tuple[tuple[str, Found], Outcome], None, None]:
        """Each candidate with its outcome (read, hashed, chunked), in order: here, or in worker
        processes once `_start_pool` has run and they are up (batches of files, a few in
        flight so they stay busy while memory stays bounded)."""

        def job(found: Found) -> Job:
            path = found.path
            old = None if self.force else (known.get(path) or (0, ""))[1]
            return path, old, self.chunk_chars, self.chunk_overlap, self._roles.get(path, "")

        if self.workers < 1:
            for candidate in candidates:
                yield candidate, prepare_file(*job(candidate[1]))
            return
        in_flight: deque[tuple[list[tuple[str, Found]], list[Job], Future[list[Outcome]]]]
        in_flight = deque()
        try:
            for group in _groups(candidates, PARALLEL_BATCH):
                jobs = [job(found) for _, found in group]
                pool = self._pool
                if pool is None or not all(f.done() for f in self._warm):
                    if pool is not None:
                        self.prepared_here += len(jobs)
                    yield from zip(group, prepare_files(jobs), strict=True)
                    continue
                in_flight.append((group, jobs, pool.submit(prepare_files, jobs)))
                while in_flight and (len(in_flight) > 2 * self.workers or in_flight[0][2].done()):
                    head, _, future = in_flight[0]
                    outcomes = future.result()
                    in_flight.popleft()
                    yield from zip(head, outcomes, strict=True)
            while in_flight:
                head, _, future = in_flight[0]
                outcomes = future.result()
                in_flight.popleft()
                yield from zip(head, outcomes, strict=True)
        except (BrokenProcessPool, OSError, RuntimeError) as exc:
            # No worker processes here after all (e.g. a main module without a __main__
            # guard): what they held, and the rest, is prepared in this thread.
            log.warning("memory indexing without worker processes: %s", exc)
            while in_flight:
                head, jobs, _ = in_flight.popleft()
                yield from zip(head, prepare_files(jobs), strict=True)
            for candidate in candidates:
                yield candidate, prepare_file(*job(candidate[1]))
        finally:
            for _, _, future in in_flight:  # stopped early (cancelled): drop queued work
                future.cancel()

    def _submit(
        self, batch: list[_Prepared], known: dict[str, tuple[int, str, int, int]]
    ) -> Future[tuple[int, int]]:
        """Queue one transaction writing a batch of files; returns chunks (added, removed)."""
        stamp = _now()
        # The texts are encoded here, while the writer is busy with the previous batch; their
        # ids follow in the writer's order (first id + position).
        notes, derived = _fts_rows(batch)

        def write(conn: sqlite3.Connection) -> tuple[int, int]:
            # New files and every chunk go in with one statement per table over a JSON array
            # (ids assigned here): executemany gives the GIL back around every row, and with any
            # other Python thread busy each row then waits out the 5 ms switch interval (100x
            # slower, measured with one busy thread); per-file statements cost more still.
            began = time.perf_counter()
            removed = 0
            if self._next_ids is None:  # passes hold the service's lock: ids read once a pass
                row = conn.execute(NEXT_IDS).fetchone()
                self._next_ids = (int(row[0]), int(row[1]))
            next_file, next_chunk = self._next_ids
            files: list[tuple[Any, ...]] = []
            places: list[tuple[int, int, int, int, str, int | None]] = []
            first_chunk = next_chunk
            for item in batch:
                key = item.found.path
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
                    removed += delete_chunks(conn, old[0])
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
                    places.append(
                        (
                            next_chunk,
                            file_id,
                            chunk.line_start,
                            chunk.line_end,
                            chunk.kind,
                            chunk.page,
                        )
                    )
                    next_chunk += 1
            if files:
                conn.execute(INSERT_FILES, (json.dumps(files),))
            if places:
                conn.execute(INSERT_CHUNKS, (json.dumps(places),))
                if notes != "[]":
                    conn.execute(INSERT_FTS.format(NOTES_TABLE), (first_chunk, notes))
                if derived != "[]":
                    conn.execute(INSERT_FTS.format(DERIVED_TABLE), (first_chunk, derived))
            self._next_ids = (next_file, next_chunk)
            self._write_seconds += time.perf_counter() - began  # read after the future settles
            return len(places), removed

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
            if item.found.path in known:
                report.files_updated += 1
            else:
                report.files_added += 1

    def compact(self) -> int:
        """Merge the FTS index's segments, a step per transaction, until one is left: a search
        probes every segment, and after a big pass that is half its time. Returns the steps."""

        def step(conn: sqlite3.Connection) -> bool:
            before = conn.total_changes
            conn.execute(
                "INSERT INTO memory_fts(memory_fts, rank) VALUES ('merge', ?)", (-COMPACT_PAGES,)
            )
            return conn.total_changes - before >= 2  # FTS5's sign that it merged something
            # (the derived table is small: FTS5's automerge keeps it compact)

        steps = 0
        while steps < COMPACT_MAX_STEPS and not self.cancelled.is_set():
            if not self.db.write_sync(step):
                break
            steps += 1
        if steps:  # the merge rewrote the index: copy it back, leave no big WAL behind
            self.db.truncate_wal()
        return steps

    def remove_source(self, source: str) -> int:
        """Drop every file indexed from `source` right away; returns the files removed."""

        def write(conn: sqlite3.Connection) -> int:
            rows = conn.execute("SELECT id FROM memory_files WHERE source = ?", (source,))
            ids = [r[0] for r in rows]
            delete_files(conn, ids)
            return len(ids)

        return self.db.write_sync(write)


def _fts_rows(batch: list[_Prepared]) -> tuple[str, str]:
    """The batch's FTS rows as JSON (see rows.fts_rows), on the indexing thread."""
    return fts_rows(chunk for item in batch for chunk in item.chunks or ())
