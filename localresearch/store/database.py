"""One SQLite file in WAL mode: every write on one writer thread, reads on a small pool."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from localresearch.errors import Unavailable

T = TypeVar("T")
log = logging.getLogger(__name__)

_STOP = object()
# The WAL is copied back into the database once it holds this much (SQLite's own default is
# 1000 pages), by a checkpointer thread rather than inside a writer's COMMIT.
CHECKPOINT_BYTES = 4 * 1024 * 1024
# Passive checkpoints never catch up with a long burst of writes, so the WAL only grows: at this
# size the writer itself checkpoints between two transactions and the WAL starts over.
WAL_RESTART_BYTES = 64 * 1024 * 1024


class DatabaseClosed(RuntimeError):
    """The daemon is shutting down; work that needs the database must stop."""


_STORAGE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only"}
if hasattr(errno, "EDQUOT"):
    _STORAGE_ERRNOS[errno.EDQUOT] = "the disk quota is exceeded"
_STORAGE_MESSAGES = (
    ("database or disk is full", "the disk is full"),
    ("readonly database", "the database is read-only"),
    ("disk i/o error", "the disk reported an I/O error"),
    ("unable to open database file", "the database file cannot be opened"),
)


def storage_problem(exc: BaseException) -> str | None:
    """What is wrong with the storage, if `exc` says the disk (not the request) failed."""
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        name = f" ({exc.filename})" if exc.filename else ""
        return _STORAGE_ERRNOS[exc.errno] + name
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        text = str(exc).lower()
        for needle, cause in _STORAGE_MESSAGES:
            if needle in text:
                return cause
    return None


def storage_unavailable(cause: str) -> Unavailable:
    return Unavailable(f"Storage unavailable: {cause}; nothing was saved")


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the pragmas every part of localresearch relies on."""
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


class Database:
    """Async access to the daemon's database without ever blocking the event loop on disk.

    Writes are serialised through one thread, each in its own `BEGIN IMMEDIATE` transaction,
    so there is exactly one writer; reads run concurrently on their own connections (WAL lets
    them proceed while a write is in progress). Checkpoints run on a thread of their own
    (passive: they never hold up the writer), so no COMMIT pays for copying the WAL back.
    """

    def __init__(self, path: Path, *, readers: int = 4) -> None:
        self.path = path
        self._readers = readers
        self._queue: queue.Queue[Any] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._read_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._checkpointer: threading.Thread | None = None
        self._committed = threading.Event()  # the WAL may have grown
        self._checkpointing = threading.Lock()  # one checkpoint at a time
        self._closing = False
        self._identity: tuple[int, int] | None = None  # (device, inode) of the open file

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Open the file, apply migrations and start the writer thread (synchronous)."""
        from localresearch.store.migrations import apply_migrations

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_conn = connect(self.path)
        apply_migrations(self._write_conn)
        self._identity = self._file_identity()
        self._write_conn.execute("PRAGMA wal_autocheckpoint=0")
        # A WAL restarted after a burst is cut back, so its size on disk says how much it holds.
        self._write_conn.execute(f"PRAGMA journal_size_limit={CHECKPOINT_BYTES}")
        self._closing = False
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, args=(connect(self.path),), name="sqlite-checkpointer"
        )
        self._checkpointer.daemon = True
        self._checkpointer.start()
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True)
        self._writer.start()
        self._read_pool = ThreadPoolExecutor(self._readers, thread_name_prefix="sqlite-reader")

    def close(self) -> None:
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                self._queue.put(_STOP)
        if writer is not None:
            writer.join()
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            self._closing = True
            self._committed.set()
            checkpointer.join()
        # Anything queued behind the stop marker fails instead of waiting forever.
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not _STOP and item[1].set_running_or_notify_cancel():
                item[1].set_exception(DatabaseClosed("database is closed"))
        if self._read_pool is not None:
            self._read_pool.shutdown(wait=True)
            self._read_pool = None
        with self._lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns.clear()
        if self._write_conn is not None:
            self._write_conn.close()
            self._write_conn = None

    # -- writes ----------------------------------------------------------------------------

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_dev, stat.st_ino

    def _check_file(self) -> None:
        """Refuse to commit into a database file that was deleted or replaced under the
        daemon: SQLite would go on writing to the unlinked file, and every write would be
        acknowledged and then lost."""
        if self._identity is not None and self._file_identity() != self._identity:
            raise Unavailable(
                f"Storage unavailable: the database file {self.path} was deleted or replaced "
                "while the daemon runs; nothing was saved. Restart the daemon "
                "(research daemon stop, then start) to open it again"
            )

    def _write_loop(self) -> None:
        conn = self._write_conn
        assert conn is not None
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            fn, future, in_transaction = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                if not in_transaction:
                    result = fn(conn)
                else:
                    self._check_file()
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        result = fn(conn)
                        self._check_file()
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
            except BaseException as exc:
                if in_transaction and conn.in_transaction:  # e.g. a COMMIT the disk refused
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error as rollback:
                        log.error("rollback failed: %s", rollback)
                cause = storage_problem(exc)
                if cause is not None:
                    log.error("write refused: %s (%s)", cause, exc)
                    exc = storage_unavailable(cause)
                future.set_exception(exc)
            else:
                future.set_result(result)
            self._after_commit(conn)

    def _after_commit(self, conn: sqlite3.Connection) -> None:
        try:
            if os.stat(f"{self.path}-wal").st_size >= WAL_RESTART_BYTES:
                with self._checkpointing:  # a passive checkpoint running would make this busy
                    conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        except (OSError, sqlite3.Error) as exc:  # the next commit tries again
            log.warning("database checkpoint failed: %s", exc)
        self._committed.set()

    def _checkpoint_loop(self, conn: sqlite3.Connection) -> None:
        wal = f"{self.path}-wal"
        try:
            while True:
                self._committed.wait()
                self._committed.clear()
                if self._closing:
                    return
                try:
                    size = os.stat(wal).st_size
                    if size < CHECKPOINT_BYTES:
                        continue
                    with self._checkpointing:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except (OSError, sqlite3.Error) as exc:  # the next commit tries again
                    log.warning("database checkpoint failed: %s", exc)
        finally:
            conn.close()

    def submit_write(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Queue `fn(conn)` to run in one transaction on the writer thread."""
        return self._enqueue(fn, in_transaction=True)

    def _enqueue(self, fn: Callable[[sqlite3.Connection], T], *, in_transaction: bool) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._writer is None:
                raise DatabaseClosed("database is not open")
            self._queue.put((fn, future, in_transaction))
        return future

    def truncate_wal(self) -> None:
        """Copy the whole WAL back and cut it to nothing (after a big merge, say: readers then
        read the database file alone, and the size on disk is the data's). Waits at most a
        second for readers; if they hold on, the WAL stays for the next checkpoint."""

        def truncate(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA busy_timeout=1000")
            try:
                with self._checkpointing:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            finally:
                conn.execute("PRAGMA busy_timeout=30000")

        self._enqueue(truncate, in_transaction=False).result()

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` in one write transaction and await its result."""
        return await asyncio.wrap_future(self.submit_write(fn))

    def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """The same from a worker thread (never from the event loop)."""
        return self.submit_write(fn).result()

    # -- reads -----------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._read_conns.append(conn)
        return conn

    def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read on this thread's own read-only connection."""
        return fn(self._reader())

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on a read-only connection in the reader pool."""
        if self._read_pool is None:
            raise DatabaseClosed("database is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self.read_sync, fn)

    def size_bytes(self) -> int:
        """The database's size on disk, WAL included."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            candidate = Path(str(self.path) + suffix)
            if candidate.exists():
                total += candidate.stat().st_size
        return total
