"""The memory service: keeps the index current in the background and answers searches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import sqlite3
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import TypeVar

from localresearch.config import Config
from localresearch.errors import Conflict, InvalidRequest, NotFound, ProviderError
from localresearch.memory import kinds as chunk_kinds
from localresearch.memory.embeddings import Embedder, combine, make_embedder
from localresearch.memory.extract import SUPPORTED_SUFFIXES, suffix_of
from localresearch.memory.fileview import DEFAULT_CONTEXT, FileView, view_file
from localresearch.memory.indexer import Indexer, Progress, ReindexReport, SourceSpec
from localresearch.memory.query import parse_terms
from localresearch.memory.ranking import CHUNKS_SQL, TableStats, top_rows
from localresearch.memory.rerank import length_factor, rerank
from localresearch.memory.schema import DERIVED_TABLE, NOTES_TABLE
from localresearch.memory.stats import (
    DailyLogs,
    EmbeddingStats,
    FileFacts,
    FilesStats,
    IndexStats,
    MemoryStats,
    MemoryStatus,
    SourceRemoved,
    VectorProgress,
)
from localresearch.memory.types import SearchHit
from localresearch.memory.vector_worker import VectorWorker
from localresearch.memory.vectors import VectorIndex, load_index, matrix_file_for
from localresearch.paths import Paths
from localresearch.redaction import redact
from localresearch.store import Database
from localresearch.workspace import ensure_workspace, workspace_dir

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_LIMIT = 1000
# Query planning (top-k BM25 with MaxScore-style checked candidates): memory/ranking.py.
# Semantic search: BM25 and cosine each give their best FUSION_DEPTH chunks to score fusion
# (200: better than 50 or 100 on SciFact train). Vectors are made by a background worker
# (vector_worker.py), which retries a failing provider with a growing delay.
FUSION_DEPTH = 200


@dataclass(frozen=True)
class Nearest:
    """A query's vector, the index it was scored on, and its nearest chunks (None: too many
    rows to scan, BM25's candidates are re-scored instead)."""

    vector: list[float]
    index: VectorIndex
    top: list[tuple[int, float]] | None


# A pass that added or removed this many chunks leaves many small FTS5 segments: they are merged
# in the background (searches afterwards take about half the time on SciFact).
COMPACT_MIN_CHUNKS = 1000
# Handing a search to a reader thread costs 0.3-0.5 ms here (the thread's wake-up, then the
# event loop's), some 15% of a SciFact search. While recent searches have taken at most
# INLINE_SEARCH_S of SQL, searches run on the event loop; once they take longer (a big index,
# a cold cache), they go to the reader pool, so the loop is never held up for long.
INLINE_SEARCH_S = 0.005
# Derived text is searched only on request, and a kind filter keeps part of it: fetch more.
DERIVED_FETCH_FACTOR = 4
VECTORS_POLL_S = 0.05
# Rows read by id on the event loop after fusion (each ~20 us); more go to a reader thread.
INLINE_CHUNK_ROWS = 50


@dataclass(frozen=True)
class Source:
    """A folder the index covers, and where it was declared (workspace, config or user)."""

    path: Path
    origin: str
    glob: str = ""

    def spec(self) -> SourceSpec:
        globs = tuple(g.strip() for g in self.glob.split(",") if g.strip())
        return SourceSpec(self.path, globs, workspace=self.origin == "workspace")


NAME_MAX, PATH_MAX = 255, 4096  # bytes, as Linux and macOS file systems count them


def _normalise(path: str) -> Path:
    """The absolute path; one the file system would refuse as too long is a clear 400."""
    encoded = os.fsencode(path)
    if len(encoded) > PATH_MAX or any(len(part) > NAME_MAX for part in encoded.split(b"/")):
        raise InvalidRequest(
            f"Parameter path is too long (at most {NAME_MAX} bytes per name, {PATH_MAX} in all)"
        )
    return Path(path).expanduser().resolve()


def _file_facts(path: Path) -> FileFacts:
    try:
        data = path.read_bytes()
    except OSError:
        return FileFacts(size_bytes=0, lines=0)
    lines = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
    return FileFacts(size_bytes=len(data), lines=lines)


class MemoryService:
    """Implements MemorySearcher for chat and research; owns the watcher task."""

    def __init__(self, config: Config, paths: Paths, db: Database) -> None:
        self.config = config
        self.paths = paths
        self.db = db
        self.workspace = workspace_dir(config, paths)
        memory = config.memory
        self.indexer = Indexer(db, memory.chunk_chars, memory.chunk_overlap)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._compaction: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.last_report: ReindexReport | None = None
        self.indexing = False
        self._stopping = False
        self._tables = {table: TableStats(table) for table in (NOTES_TABLE, DERIVED_TABLE)}
        self._search_seconds = math.inf  # recent searches' SQL time (decaying average)
        self.embedder: Embedder | None = None
        self.vector_worker: VectorWorker | None = None
        self._vectors: VectorIndex | None = None
        self._vectors_generation = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        # A misconfigured or missing embeddings provider stops the start with a clear error.
        self.embedder = await asyncio.to_thread(make_embedder, self.config.memory.embeddings)
        await asyncio.to_thread(ensure_workspace, self.workspace)
        if self.embedder is not None:  # picks up chunks left without vectors at once
            batch = self.config.memory.embeddings.batch_size
            self.vector_worker = VectorWorker(self.db, self.embedder, batch, self._forget_vectors)
            self.vector_worker.start()
        self._task = asyncio.create_task(self._run(), name="memory-indexer")

    @property
    def embed_error(self) -> str | None:
        """The embeddings provider's last error (None once a pass succeeded)."""
        return self.vector_worker.error if self.vector_worker is not None else None

    async def stop(self) -> None:
        self._stopping = True
        self.indexer.cancelled.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # A pass running in its thread stops at the next file; wait so the DB can close.
        async with self._lock:
            pass
        if self.vector_worker is not None:  # stops after the batch being embedded
            await asyncio.to_thread(self.vector_worker.stop)
        close = getattr(self.embedder, "close", None)  # an HTTP embedder's pooled connections
        if close is not None:
            await asyncio.to_thread(close)
        if self._compaction is not None:  # stops after its current step
            with contextlib.suppress(asyncio.CancelledError):
                await self._compaction
            self._compaction = None

    async def wait_ready(self) -> None:
        """Wait for the first indexing pass after start (tests and benchmarks use this)."""
        await self._ready.wait()

    async def _run(self) -> None:
        memory = self.config.memory
        pause = memory.watch_interval
        while True:
            started = time.monotonic()
            try:
                await self._pass(force=False, progress=None)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("memory indexing pass failed")
            self._ready.set()
            if not memory.watch:
                return
            # Polling costs a stat per file: on a huge tree, poll less often than configured.
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(pause, 5 * elapsed))

    async def _pass(self, *, force: bool, progress: Progress | None) -> ReindexReport:
        async with self._lock:
            sources = [source.spec() for source in await self.sources()]
            self.indexing = True
            explicit = progress is not None or force

            def sync() -> ReindexReport:
                report = self.indexer.sync(sources, force=force, progress=progress)
                if report.chunks_added or report.chunks_removed:
                    self._forget_frequencies()
                if self.vector_worker is not None and (
                    explicit or report.chunks_added or report.chunks_removed
                ):  # the vectors follow in the background; BM25 is current now
                    self.vector_worker.kick(now=explicit)
                return report

            work = asyncio.ensure_future(asyncio.to_thread(sync))
            try:
                report = await asyncio.shield(work)
            except asyncio.CancelledError:
                # Keep the lock until the thread has stopped (at the next file), so that the
                # database is never closed under a running pass.
                self.indexer.cancelled.set()
                with contextlib.suppress(Exception):
                    await work
                if not self._stopping:
                    self.indexer.cancelled.clear()
                raise
            finally:
                self.indexing = False
            self.last_report = report
            if report.chunks_added + report.chunks_removed >= COMPACT_MIN_CHUNKS:
                self._compact_soon()
            if report.files_added or report.files_updated or report.files_removed:
                # appended chats alone (every poll under chat load): not worth a log line each
                appends = report.files_updated == self.indexer.appended_logs
                quiet = appends and not report.files_added and not report.files_removed
                log.log(
                    logging.DEBUG if quiet else logging.INFO,
                    "memory index: %s",
                    {
                        "added": report.files_added,
                        "updated": report.files_updated,
                        "removed": report.files_removed,
                        "skipped": report.skipped_total,
                        "chunks_added": report.chunks_added,
                    },
                )
            return report

    @property
    def compacting(self) -> bool:
        """Whether segments are being merged after a big pass (searches are slower meanwhile)."""
        return self._compaction is not None and not self._compaction.done()

    def _compact_soon(self) -> None:
        """Merge the index's segments in the background (one running at a time)."""
        if self._stopping or self.compacting:
            return

        async def compact() -> None:
            started = time.monotonic()
            try:
                steps = await asyncio.to_thread(self.indexer.compact)
            except Exception as exc:  # the database closing under it, say: merged next time
                log.warning("memory index compaction stopped: %r", exc)
                return
            if steps:
                log.info(
                    "memory index compacted in %d steps, %.2f s", steps, time.monotonic() - started
                )

        self._compaction = asyncio.create_task(compact(), name="memory-compaction")

    async def reindex(
        self,
        *,
        force: bool = False,
        progress: Callable[[int, int, str], None] | None = None,
        wait_vectors: bool = True,
    ) -> ReindexReport:
        """Bring the index up to date now (force: re-chunk every file) and say what changed;
        with `wait_vectors`, return once the background worker has embedded the new chunks."""
        report = await self._pass(force=force, progress=progress or (lambda *_: None))
        if wait_vectors:
            await self.wait_vectors()
        return report

    async def wait_vectors(self) -> None:
        """Wait until every chunk has a vector, or the provider failed (see `embed_error`)."""
        worker = self.vector_worker
        # The worker is a thread: its state is polled (an asyncio.Event is not thread-safe).
        while worker is not None and not worker.idle and not self._stopping:  # noqa: ASYNC110
            await asyncio.sleep(VECTORS_POLL_S)

    def vector_progress(self) -> VectorProgress | None:
        """The background embedding pass: done / total, rate, ETA (None if none ran)."""
        worker = self.vector_worker
        if worker is None or worker.run is None:
            return None
        return worker.run.progress(running=not worker.idle)

    # -- search ----------------------------------------------------------------------------

    async def search(
        self,
        query: str,
        limit: int = 10,
        *,
        kinds: Collection[str] | None = None,
        prefix: bool = False,
    ) -> list[SearchHit]:
        """Best chunks for any user text (empty text is an InvalidRequest): the user's notes,
        or the given `kinds` (memory/kinds.py); `prefix`: the last word is still being typed."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequest("Query is empty: give some words to search for (parameter q)")
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
        wanted = frozenset(kinds) if kinds else frozenset({chunk_kinds.NOTE})
        unknown = wanted - set(chunk_kinds.KINDS)
        if unknown:
            raise InvalidRequest(
                f"Unknown kind {sorted(unknown)[0]!r} (one of: {', '.join(chunk_kinds.KINDS)})"
            )
        terms = parse_terms(query, prefix=prefix)
        if not terms and self.embedder is None:
            return []
        memory = self.config.memory
        reranking = memory.recency_weight > 0 or memory.mmr_lambda < 1.0
        fetch = min(limit * 4, MAX_LIMIT) if reranking else limit
        if memory.length_prior > 0:  # the prior can lift a hit from below the limit
            fetch = max(fetch, min(2 * limit, MAX_LIMIT))
        if self.embedder is not None:
            fetch = max(fetch, FUSION_DEPTH)
        derived = wanted & chunk_kinds.DERIVED

        def read(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            rows: list[sqlite3.Row] = []
            if chunk_kinds.NOTE in wanted:
                rows.extend(top_rows(conn, self._tables[NOTES_TABLE], terms, fetch))
            if derived:
                depth = fetch if derived == chunk_kinds.DERIVED else fetch * DERIVED_FETCH_FACTOR
                found = top_rows(conn, self._tables[DERIVED_TABLE], terms, depth)
                rows.extend(row for row in found if row["kind"] in wanted)
                rows.sort(key=lambda row: float(row["score"]))
            return rows[:fetch]

        # The query embedding (and the vector scan) runs in a worker thread while BM25's SQL
        # runs: a search then costs the longer of the two, not their sum.
        nearest: asyncio.Future[Nearest] | None = None
        if self.embedder is not None:
            nearest = self._nearest(query, fetch)
        try:
            rows = await self._read_search(read)
        except sqlite3.OperationalError as exc:  # never expected: terms are always quoted
            log.warning("memory search failed for %r: %s", query, exc)
            if nearest is not None:
                nearest.cancel()
            raise InvalidRequest(f"Could not search for this query: {exc}") from None
        except BaseException:
            if nearest is not None:
                nearest.cancel()
            raise
        hits = [_hit(row, memory.length_prior) for row in rows]
        if memory.length_prior > 0:
            hits.sort(key=attrgetter("score"), reverse=True)
        mtimes = {row["id"]: row["mtime_ns"] / 1e9 for row in rows}
        if nearest is not None:
            keep = fetch if reranking else limit  # reranking looks at the whole fused depth
            hits = await self._fuse(nearest, hits, fetch, keep, mtimes, wanted)
        if reranking:
            hits = rerank(hits, mtimes, memory.recency_weight, memory.mmr_lambda, time.time())
        return hits[:limit]

    async def _read_search(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """Run a search's SQL where it costs least: on the loop while searches are quick."""

        def timed(conn: sqlite3.Connection) -> T:
            started = time.perf_counter()
            try:
                return read(conn)
            finally:
                elapsed = time.perf_counter() - started
                previous = self._search_seconds
                self._search_seconds = (
                    elapsed if math.isinf(previous) else 0.8 * previous + 0.2 * elapsed
                )

        if self._search_seconds <= INLINE_SEARCH_S:
            return self.db.read_sync(timed)  # bounded: a few milliseconds of SQL
        return await self.db.read(timed)

    def _nearest(self, query: str, depth: int) -> asyncio.Future[Nearest]:
        """The query's vector and, when the index scans every row, its `depth` nearest chunks,
        in one worker-thread hop (each costs milliseconds on a loaded machine), submitted at
        once: it runs while BM25's SQL runs, even when that SQL runs on the loop."""
        assert self.embedder is not None
        embedder = self.embedder
        loop = asyncio.get_running_loop()

        def work(index: VectorIndex) -> Nearest:
            vector = embedder.embed([query])[0]
            return Nearest(vector, index, index.top(vector, depth) if index.scans else None)

        if self._vectors is not None:
            return loop.run_in_executor(None, work, self._vectors)

        async def loading() -> Nearest:
            return await loop.run_in_executor(None, work, await self._vector_index())

        return asyncio.ensure_future(loading())

    async def _fuse(
        self,
        pending: asyncio.Future[Nearest],
        hits: list[SearchHit],
        depth: int,
        keep: int,
        mtimes: dict[int, float],
        wanted: frozenset[str],
    ) -> list[SearchHit]:
        """The best `keep` of BM25's hits fused with the nearest chunks by embedding (weighted
        sum of normalised scores); the score becomes the fused score. If the provider fails,
        the BM25 hits."""
        try:
            found = await pending
        except Exception as exc:  # provider down or broken: BM25 still answers
            message = exc.message if isinstance(exc, ProviderError) else redact(repr(exc))
            log.warning("memory search without embeddings: %s", message)
            return hits
        nearest = found.top
        if nearest is None:  # too many rows to scan in time: BM25's candidates, re-scored
            nearest = found.index.score(found.vector, [hit.chunk_id for hit in hits])
        if not nearest:
            return hits
        lexical = [(hit.chunk_id, hit.score) for hit in hits]
        settings = self.config.memory.embeddings
        fused = combine(lexical, nearest, settings.vector_weight, settings.similarity_floor)
        fused = fused[:depth]
        known = {hit.chunk_id: hit for hit in hits}
        out: list[SearchHit] = []
        start = 0
        # Only the rows of the hits kept are read (the vector side's up to `depth` others cost
        # milliseconds to read): a window of as many as are still wanted, then the next if a
        # chunk was gone or of another kind, so the result is the fused list's first `keep`.
        while len(out) < keep and start < len(fused):
            window = fused[start : start + keep - len(out)]
            start += len(window)
            missing = [chunk_id for chunk_id, _ in window if chunk_id not in known]
            if missing:
                for row in await self._read_chunks(missing, wanted):
                    known[row["id"]] = _hit(row)
                    mtimes[row["id"]] = row["mtime_ns"] / 1e9
            out += [replace(known[cid], score=score) for cid, score in window if cid in known]
        return out

    async def _read_chunks(self, chunk_ids: list[int], wanted: frozenset[str]) -> list[sqlite3.Row]:
        """The rows of the given chunks of the wanted kinds: on the loop when few (by primary
        key, well under a millisecond; a reader thread's hop costs more), else in the pool."""

        def read(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            marks = ",".join("?" * len(chunk_ids))
            rows: list[sqlite3.Row] = []
            for table in (NOTES_TABLE, DERIVED_TABLE):
                sql = CHUNKS_SQL.format(table=table, marks=marks)
                rows += [r for r in conn.execute(sql, chunk_ids) if r["kind"] in wanted]
            return rows

        if len(chunk_ids) <= INLINE_CHUNK_ROWS:
            return self.db.read_sync(read)
        return await self.db.read(read)

    async def _vector_index(self) -> VectorIndex:
        """Every vector in memory (loaded again after the index or its vectors change)."""
        assert self.embedder is not None
        index = self._vectors
        if index is None:
            generation = self._vectors_generation
            matrix = matrix_file_for(self.paths.data_dir, self.embedder.name)
            index = await asyncio.to_thread(load_index, self.db, self.embedder.name, matrix)
            if generation == self._vectors_generation:
                self._vectors = index
        return index

    def _forget_vectors(self) -> None:
        self._vectors_generation += 1
        self._vectors = None

    def _forget_frequencies(self) -> None:
        """The index changed: searches in flight fill the old dict, new ones start afresh."""
        for stats in self._tables.values():
            stats.forget()
        self._forget_vectors()

    # -- sources ---------------------------------------------------------------------------

    async def sources(self) -> list[Source]:
        """The workspace, then `[memory].paths`, then folders added with `memory add`."""
        found = [Source(self.workspace, "workspace")]
        found += [Source(_normalise(p), "config") for p in self.config.memory.paths]

        def read(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            sql = "SELECT path, glob FROM memory_sources ORDER BY added_at"
            return conn.execute(sql).fetchall()

        found += [Source(Path(r["path"]), "user", r["glob"]) for r in await self.db.read(read)]
        return found

    async def source_files(self) -> dict[str, int]:
        """How many indexed files each source holds, by its path (what removing it drops)."""

        def read(conn: sqlite3.Connection) -> dict[str, int]:
            sql = "SELECT source, COUNT(*) FROM memory_files GROUP BY source"
            return {str(r[0]): int(r[1]) for r in conn.execute(sql)}

        return await self.db.read(read)

    async def add_source(self, path: str, glob: str = "") -> Source:
        """Remember a folder to index (it is indexed on the next pass or `reindex`)."""
        if not path or not path.strip():
            raise InvalidRequest("Missing required parameter: path")
        target = _normalise(path)
        if not target.exists():
            raise InvalidRequest(f"No such file or folder: {target}")
        if target.is_file() and suffix_of(target.name) not in SUPPORTED_SUFFIXES:
            kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
            raise InvalidRequest(f"Not a file type memory indexes ({kinds}): {target}")
        for source in await self.sources():
            if source.path == target:
                raise Conflict(f"Already a memory source ({source.origin}): {target}")
        stamp = datetime.now(UTC).isoformat()
        await self.db.write(
            lambda conn: conn.execute(
                "INSERT INTO memory_sources (path, glob, added_at) VALUES (?, ?, ?)",
                (str(target), glob or "", stamp),
            )
        )
        return Source(target, "user", glob or "")

    async def remove_source(self, path: str) -> SourceRemoved:
        """Forget a folder added with `memory add` and drop its files from the index now."""
        target = _normalise(path)
        for source in await self.sources():
            if source.path == target and source.origin != "user":
                hint = " (remove it from [memory].paths in config.toml)"
                raise Conflict(
                    f"{target} is the {source.origin} source"
                    + (hint if source.origin == "config" else "")
                )

        def delete(conn: sqlite3.Connection) -> int:
            sql = "DELETE FROM memory_sources WHERE path = ?"
            return conn.execute(sql, (str(target),)).rowcount

        if not await self.db.write(delete):
            raise NotFound(f"Not a memory source: {target}")
        async with self._lock:
            removed = await asyncio.to_thread(self.indexer.remove_source, str(target))
            self._forget_frequencies()
        return SourceRemoved(path=str(target), files_removed=removed)

    async def view_file(
        self,
        path: str,
        line: int = 1,
        end: int | None = None,
        context: int = DEFAULT_CONTEXT,
        page: int | None = None,
    ) -> FileView:
        """A cited file's lines, only for files under a source (symlinks and `..` resolved)."""
        roots = [source.path for source in await self.sources()]
        return await asyncio.to_thread(view_file, path, roots, line, end, context, page)

    # -- statistics ------------------------------------------------------------------------

    async def counts(self) -> tuple[int, int]:
        """Files and chunks in the index."""

        def read(conn: sqlite3.Connection) -> tuple[int, int]:
            files = conn.execute("SELECT count(*) FROM memory_files").fetchone()[0]
            chunks = conn.execute("SELECT count(*) FROM memory_chunks").fetchone()[0]
            return int(files), int(chunks)

        return await self.db.read(read)

    async def chunks_by_kind(self) -> dict[str, int]:
        """Chunks per kind: the user's notes, and what the daemon wrote (never embedded)."""

        def read(conn: sqlite3.Connection) -> dict[str, int]:
            # Derived chunks are few: counted through their own table, notes by difference
            # (a GROUP BY over every chunk takes a while on a big index).
            sql = (
                "SELECT kind, count(*) FROM memory_chunks WHERE id IN"
                f" (SELECT rowid FROM {DERIVED_TABLE}) GROUP BY kind"
            )
            found = {str(kind): int(n) for kind, n in conn.execute(sql)}
            total = int(conn.execute("SELECT count(*) FROM memory_chunks").fetchone()[0])
            found[chunk_kinds.NOTE] = total - sum(found.values())
            return {kind: found.get(kind, 0) for kind in chunk_kinds.KINDS}

        return await self.db.read(read)

    async def status(self) -> MemoryStatus:
        files, chunks = await self.counts()
        return MemoryStatus(files_indexed=files, chunks=chunks, indexing=self.indexing)

    async def embedding_stats(self) -> EmbeddingStats | None:
        """Provider, vectors stored and the last provider error (None without embeddings)."""
        if self.embedder is None:
            return None
        name = self.embedder.name

        def read(conn: sqlite3.Connection) -> int:
            sql = "SELECT count(*) FROM memory_vectors WHERE model = ?"
            return int(conn.execute(sql, (name,)).fetchone()[0])

        return EmbeddingStats(
            model=name,
            vectors=await self.db.read(read),
            error=self.embed_error,
            progress=self.vector_progress(),
        )

    async def stats(self) -> MemoryStats:
        """The index, its sources, the workspace's files, the last pass and the embeddings."""
        files, chunks = await self.counts()

        def read(conn: sqlite3.Connection) -> str | None:
            sql = "SELECT value FROM meta WHERE key = 'memory.last_indexed'"
            row = conn.execute(sql).fetchone()
            return str(row[0]) if row else None

        last_indexed = await self.db.read(read)
        workspace_files = await asyncio.to_thread(self._workspace_files, files)
        size = await asyncio.to_thread(self.db.size_bytes)
        index = IndexStats(
            chunks=chunks,
            chunks_by_kind=await self.chunks_by_kind(),
            last_indexed=last_indexed,
            database_size_bytes=size,
            indexing=self.indexing,
            compacting=self.compacting,
        )
        return MemoryStats(
            workspace=str(self.workspace),
            files=workspace_files,
            index=index,
            sources=await self.sources(),
            last_reindex=self.last_report,
            embeddings=await self.embedding_stats(),
        )

    def _workspace_files(self, total_indexed: int) -> FilesStats:
        logs = sorted((self.workspace / "memory").glob("*.md"))
        total = 0
        for log_file in logs:
            with contextlib.suppress(OSError):
                total += log_file.stat().st_size
        return FilesStats(
            total=total_indexed,
            memory_md=_file_facts(self.workspace / "MEMORY.md"),
            heartbeat_md=_file_facts(self.workspace / "HEARTBEAT.md"),
            daily_logs=DailyLogs(count=len(logs), total_size_bytes=total),
        )


def _hit(row: sqlite3.Row, length_prior: float = 0.0) -> SearchHit:
    heading, content = row["heading"], row["content"]
    score = -float(row["score"])
    if length_prior > 0:
        score *= length_factor(len(heading) + len(content), length_prior)
    return SearchHit(
        file=row["rel"],
        path=row["path"],
        content=content,
        score=score,
        line_start=row["line_start"],
        line_end=row["line_end"],
        heading=heading,
        chunk_id=row["id"],
        kind=row["kind"],
        page=row["page"],
    )
