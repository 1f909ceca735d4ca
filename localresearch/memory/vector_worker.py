"""Embedding chunks in the background: BM25 indexing never waits for the vectors.

The queue is the index itself: chunks without a vector of the current model. A worker thread
reads them in windows of WINDOW_BATCHES batches (memory stays bounded however many wait),
sorts each window by length (batches of similar length pad less), embeds and stores batch by
batch. After a restart the chunks still without a vector are simply the next window.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from localresearch.errors import ProviderError
from localresearch.memory.stats import VectorProgress
from localresearch.memory.vectors import pack
from localresearch.redaction import redact
from localresearch.store import Database

log = logging.getLogger(__name__)

WINDOW_BATCHES = 8
RETRY_S = 15.0
RETRY_MAX_S = 600.0
# The search index is reloaded while vectors come in at most this often (and at the end).
REFRESH_S = 30.0

_MISSING_SQL = """
SELECT c.id, t.heading, t.content FROM memory_chunks AS c
JOIN memory_fts AS t ON t.rowid = c.id
LEFT JOIN memory_vectors AS v ON v.chunk_id = c.id
WHERE v.chunk_id IS NULL AND c.id > ? ORDER BY c.id LIMIT ?
"""
# Only the user's notes are embedded (the daemon's own text is never evidence): memory/kinds.py.
_COUNT_MISSING_SQL = """
SELECT count(*) FROM memory_chunks AS c LEFT JOIN memory_vectors AS v ON v.chunk_id = c.id
WHERE v.chunk_id IS NULL AND c.kind = 'note'
"""
# A vector is stored only if its chunk still holds the text that was embedded (a chunk id can
# be reused by the indexer while a batch is being embedded).
_STORE_SQL = """
INSERT OR REPLACE INTO memory_vectors (chunk_id, model, dim, vector)
SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM memory_fts WHERE rowid = ? AND content = ?)
"""


def chunk_text(heading: str, content: str) -> str:
    """What is embedded for a chunk: its heading path, then its text."""
    return f"{heading}\n{content}" if heading else content


class EmbedRun:
    """Progress of one pass over the chunks without vectors (for stats and the reindex stream)."""

    def __init__(self, missing: int) -> None:
        self.started = time.monotonic()
        self.done = 0
        self.total = missing
        self.finished: float | None = None

    def progress(self, *, running: bool | None = None) -> VectorProgress:
        """Done of total, rate and time left; `running` defaults to this pass's own state."""
        elapsed = (self.finished or time.monotonic()) - self.started
        rate = self.done / elapsed if elapsed > 0 and self.done else 0.0
        left = max(self.total - self.done, 0)
        return VectorProgress(
            done=self.done,
            total=self.total,
            rate_per_s=round(rate, 2),
            eta_s=round(left / rate, 1) if rate > 0 and left else (0.0 if not left else None),
            running=self.finished is None if running is None else running,
        )


def embed_missing(
    db: Database,
    embedder: Any,
    batch_size: int,
    stop: threading.Event,
    run: EmbedRun | None = None,
    stored: Callable[[int], None] | None = None,
) -> int:
    """Embed the chunks that have no vector for this model; returns how many were stored.

    Vectors of another model are dropped first. A ProviderError stops the pass; the chunks
    still missing are picked up by the next one."""
    model = embedder.name
    db.write_sync(
        lambda conn: conn.execute("DELETE FROM memory_vectors WHERE model != ?", (model,))
    )
    batch_size = max(batch_size, 1)
    done = 0
    after = 0
    while not stop.is_set():

        def read(conn: sqlite3.Connection, after: int = after) -> list[sqlite3.Row]:
            return conn.execute(_MISSING_SQL, (after, batch_size * WINDOW_BATCHES)).fetchall()

        rows = db.read_sync(read)
        if not rows:
            break
        after = int(rows[-1][0])
        window = sorted(
            ((int(r[0]), str(r[2]), chunk_text(str(r[1]), str(r[2]))) for r in rows),
            key=lambda item: len(item[2]),
        )
        for start in range(0, len(window), batch_size):
            if stop.is_set():
                break
            batch = window[start : start + batch_size]
            vectors = embedder.embed([text for _, _, text in batch])
            values = [
                (cid, model, len(v), pack(v), cid, content)
                for (cid, content, _), v in zip(batch, vectors, strict=True)
                if v
            ]

            def store(conn: sqlite3.Connection, values: list[tuple[Any, ...]] = values) -> None:
                conn.executemany(_STORE_SQL, values)

            db.write_sync(store)
            done += len(batch)
            if run is not None:
                run.done += len(batch)
            if stored is not None:
                stored(len(batch))
        if run is not None:  # chunks added meanwhile join this run's total
            run.total = run.done + count_missing(db)
    return done


def count_missing(db: Database) -> int:
    return int(db.read_sync(lambda conn: conn.execute(_COUNT_MISSING_SQL).fetchone()[0]))


class VectorWorker:
    """A thread that embeds whatever lacks a vector whenever it is woken, retrying failures."""

    def __init__(
        self,
        db: Database,
        embedder: Any,
        batch_size: int,
        on_vectors: Callable[[], None],
    ) -> None:
        self.db = db
        self.embedder = embedder
        self.batch_size = batch_size
        self.on_vectors = on_vectors
        self.error: str | None = None
        self.run: EmbedRun | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._pending = True  # a restart picks up the chunks left without vectors
        self._urgent = True
        self._busy = True
        self._retry_at = 0.0
        self._backoff = RETRY_S
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="memory-vectors", daemon=True)
        self._thread.start()

    def kick(self, *, now: bool = False) -> None:
        """Chunks changed: embed them (now: even while a failure's retry delay runs)."""
        with self._cond:
            self._pending = True
            self._busy = True
            self._urgent = self._urgent or now
            self._cond.notify_all()

    @property
    def idle(self) -> bool:
        """Nothing to do until the next kick (or a failure's retry)."""
        with self._cond:
            return not self._busy

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the batch being embedded (call from a worker thread: it joins)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._stop.is_set():
                    wait = self._retry_at - time.monotonic()
                    if self._pending and (self._urgent or wait <= 0):
                        break
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait(wait if self._pending and wait > 0 else None)
                if self._stop.is_set():
                    return
                self._pending = False
                self._urgent = False
                self._busy = True
            self._embed_once()

    def _embed_once(self) -> None:
        last_refresh = time.monotonic()

        def stored(_count: int) -> None:
            nonlocal last_refresh
            if time.monotonic() - last_refresh >= REFRESH_S:
                last_refresh = time.monotonic()
                self.on_vectors()

        try:
            missing = count_missing(self.db)
            if not missing:
                return
            self.run = run = EmbedRun(missing)
            count = embed_missing(self.db, self.embedder, self.batch_size, self._stop, run, stored)
            run.finished = time.monotonic()
        except Exception as exc:  # provider errors, and anything unexpected: BM25 goes on
            message = exc.message if isinstance(exc, ProviderError) else redact(repr(exc))
            if self.run is not None:
                self.run.finished = time.monotonic()
            with self._cond:
                self.error = message
                self._pending = True
                self._retry_at = time.monotonic() + self._backoff
            log.warning("memory embeddings failed (retry in %.0f s): %s", self._backoff, message)
            self._backoff = min(self._backoff * 2, RETRY_MAX_S)
            self.on_vectors()
            return
        self.error = None
        self._backoff = RETRY_S
        if count:
            log.info("memory embeddings: %d chunks embedded with %s", count, self.embedder.name)
            self.on_vectors()
