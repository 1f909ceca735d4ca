"""The database: WAL, migrations recorded once, one writer, reads beside writes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from localresearch.store import Database
from localresearch.store.migrations import apply_migrations


def test_wal_and_migrations_recorded_once(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    db.open()
    try:
        mode = db.read_sync(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        assert mode == "wal"
        names = db.read_sync(lambda c: [r[0] for r in c.execute("SELECT name FROM _migrations")])
        assert "core.001_meta" in names
    finally:
        db.close()
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    assert apply_migrations(conn) == []  # nothing applied twice
    conn.close()


async def test_writes_are_serialised_on_one_thread(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    db.open()
    threads: set[int] = set()

    def insert(i: int):  # type: ignore[no-untyped-def]
        def fn(conn: sqlite3.Connection) -> int:
            threads.add(threading.get_ident())
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{i}", str(i)))
            return i

        return fn

    try:
        results = await asyncio.gather(*(db.write(insert(i)) for i in range(200)))
        assert results == list(range(200))
        assert len(threads) == 1 and threading.get_ident() not in threads
        count = await db.read(lambda c: c.execute("SELECT count(*) FROM meta").fetchone()[0])
        assert count == 200
    finally:
        db.close()


async def test_failed_write_rolls_back(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    db.open()

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('a', 'b')")
        raise ValueError("boom")

    try:
        with pytest.raises(ValueError):
            await db.write(bad)
        count = await db.read(lambda c: c.execute("SELECT count(*) FROM meta").fetchone()[0])
        assert count == 0
        # The writer keeps working after a failure.
        await db.write(lambda c: c.execute("INSERT INTO meta VALUES ('c', 'd')"))
        assert await db.read(lambda c: c.execute("SELECT count(*) FROM meta").fetchone()[0]) == 1
    finally:
        db.close()


async def test_reads_are_read_only(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    db.open()
    try:
        with pytest.raises(sqlite3.OperationalError):
            await db.read(lambda c: c.execute("INSERT INTO meta VALUES ('x', 'y')"))
    finally:
        db.close()


def test_writes_after_close_fail_fast_instead_of_hanging(tmp_path: Path) -> None:
    from localresearch.store.database import DatabaseClosed

    db = Database(tmp_path / "x.db")
    db.open()
    results: list[object] = []

    def writer() -> None:
        # A background indexer still writing while the daemon shuts down.
        for i in range(10_000):
            try:
                db.write_sync(
                    lambda c, i=i: c.execute("INSERT INTO meta VALUES (?, 'v')", (f"k{i}",))
                )
            except DatabaseClosed as exc:
                results.append(exc)
                return
        results.append("finished")

    thread = threading.Thread(target=writer)
    thread.start()
    db.close()
    thread.join(timeout=10)
    assert not thread.is_alive(), "a write submitted during close must not block forever"
    assert results and (isinstance(results[0], DatabaseClosed) or results[0] == "finished")
    with pytest.raises(DatabaseClosed):
        db.write_sync(lambda c: None)


def test_the_wal_is_checkpointed_off_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits never checkpoint (no COMMIT pays for copying the WAL back), yet the WAL stays
    bounded: the checkpointer thread copies it back once it is big, and it is reused."""
    from localresearch.store import database

    limit = 256 * 1024
    monkeypatch.setattr(database, "CHECKPOINT_BYTES", limit)
    db = Database(tmp_path / "db.sqlite")
    db.open()
    try:
        assert db.write_sync(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 0
        db.write_sync(lambda c: c.execute("CREATE TABLE blobs (b BLOB)"))
        wal = Path(f"{db.path}-wal")
        largest = 0  # after the first cut
        for round in range(3):  # 1 MB per round, 3 MB in all
            for _ in range(10):
                db.write_sync(lambda c: c.execute("INSERT INTO blobs VALUES (randomblob(100000))"))
                if round:
                    largest = max(largest, wal.stat().st_size)
            # Once the writes pause, the checkpointer catches up (however loaded the machine,
            # within the deadline) and the next commit starts the WAL over, cut to the limit.
            deadline = time.monotonic() + 20
            while True:
                time.sleep(0.02)
                db.write_sync(lambda c: c.execute("INSERT INTO blobs VALUES (randomblob(1000))"))
                if wal.stat().st_size <= limit:
                    break
                assert time.monotonic() < deadline, "the checkpointer never caught up"
        assert limit < largest < limit + 1100 * 1024  # a round's writes over a cut WAL, reused
        assert db.read_sync(lambda c: c.execute("SELECT count(*) FROM blobs").fetchone()[0]) >= 33
    finally:
        db.close()


def test_a_long_burst_of_writes_cannot_grow_the_wal_without_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passive checkpoints never catch up with back-to-back writes; past the restart size the
    checkpointer waits for a gap and starts the WAL over, cut back to the checkpoint size."""
    from localresearch.store import database

    monkeypatch.setattr(database, "CHECKPOINT_BYTES", 128 * 1024)
    monkeypatch.setattr(database, "WAL_RESTART_BYTES", 1024 * 1024)
    db = Database(tmp_path / "db.sqlite")
    db.open()
    try:
        db.write_sync(lambda c: c.execute("CREATE TABLE blobs (b BLOB)"))
        futures = [  # queued at once: the writer never pauses between them
            db.submit_write(lambda c: c.execute("INSERT INTO blobs VALUES (randomblob(50000))"))
            for _ in range(200)  # 10 MB
        ]
        wal = Path(f"{db.path}-wal")
        largest = 0
        for future in futures:
            future.result()
            largest = max(largest, wal.stat().st_size)
        assert largest < 4 * 1024 * 1024  # 10 MB without the restarts
        deadline = time.monotonic() + 10
        while wal.stat().st_size > 1024 * 1024 and time.monotonic() < deadline:
            db.write_sync(lambda c: c.execute("INSERT INTO blobs VALUES (1)"))
            time.sleep(0.05)
        assert wal.stat().st_size <= 1024 * 1024
    finally:
        db.close()


def test_truncate_wal_copies_everything_back(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.sqlite")
    db.open()
    try:
        db.write_sync(lambda c: c.execute("CREATE TABLE t (x BLOB)"))
        db.write_sync(lambda c: c.execute("INSERT INTO t VALUES (randomblob(300000))"))
        wal = Path(f"{db.path}-wal")
        assert wal.stat().st_size > 300000
        db.truncate_wal()
        assert wal.stat().st_size == 0
        assert db.read_sync(lambda c: c.execute("SELECT length(x) FROM t").fetchone()[0]) == 300000
        db.write_sync(lambda c: c.execute("INSERT INTO t VALUES (1)"))  # writes go on after it
    finally:
        db.close()
    with pytest.raises(Exception, match="not open"):
        db.truncate_wal()
