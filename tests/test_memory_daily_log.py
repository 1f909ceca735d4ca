"""A growing daily log is indexed by its appended tail: the same chunks and lines as a full
reindex, across restarts, failed writes and a SIGKILLed daemon; rewritten logs are read whole."""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from localresearch.memory import daily_log
from localresearch.memory.prepare import daily_log_chunks
from localresearch.memory.service import MemoryService
from localresearch.paths import Paths
from localresearch.workspace import append_daily_log
from tests import test_memory_index
from tests.daemon_fixture import DaemonHandle, call_json

service_factory = test_memory_index.service_factory  # the fixture, shared

Row = tuple[int, int, str, str, str]  # line_start, line_end, kind, heading, content


def _indexed(database: Path, path: Path) -> list[Row]:
    """The file's chunks as stored, in id order, with their text from the FTS tables."""
    conn = sqlite3.connect(database)
    try:
        file_id, count = conn.execute(
            "SELECT id, chunks FROM memory_files WHERE path = ?", (str(path),)
        ).fetchone()
        rows = conn.execute(
            "SELECT c.line_start, c.line_end, c.kind, coalesce(n.heading, d.heading),"
            " coalesce(n.content, d.content) FROM memory_chunks c"
            " LEFT JOIN memory_fts n ON n.rowid = c.id"
            " LEFT JOIN memory_fts_derived d ON d.rowid = c.id"
            " WHERE c.file_id = ? ORDER BY c.id",
            (file_id,),
        ).fetchall()
    finally:
        conn.close()
    assert count == len(rows)  # the file's chunk count follows the appends
    return [tuple(r) for r in rows]


def _expected(path: Path) -> list[Row]:
    """What a full read of the file gives (the chunking every other pass uses)."""
    text = path.read_text(encoding="utf-8")
    return [
        (c.line_start, c.line_end, c.kind, c.heading, c.content)
        for c in daily_log_chunks(text, 1200, 150)
    ]


def _append_variety(workspace: Path, i: int, when: datetime) -> Path:
    """Chats of every shape: short, longer than a chunk, with headings and fences inside,
    non-ASCII, and now and then the user's own note or a half-written entry."""
    body = f"**Question:** item {i} ünïcödé 日本語\n\n**Answer** (builtin):\n\n"
    if i % 3 == 0:
        body += " ".join(f"word{i}x{j}" for j in range(400))  # several chunks
    elif i % 3 == 1:
        body += f"## Heading {i}\n\n```\ncode {i}\n```\n\npara {i}"
    else:
        body += f"short answer {i}"
    path = append_daily_log(workspace, f"Chat: question {i}", body, when)
    if i % 7 == 3:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"## My note {i}\n\nThe user's own line {i}.\n")
    return path


async def test_appended_tails_index_like_a_full_reindex(
    service_factory,
    paths: Paths,
) -> None:  # type: ignore[no-untyped-def]
    memory: MemoryService = await service_factory(chunk_chars=1200, chunk_overlap=150)
    when = datetime(2026, 12, 2, 9, 0).astimezone()
    path = _append_variety(memory.workspace, 0, when)
    assert (await memory._pass(force=False, progress=None)).files_added == 1
    for i in range(1, 40):
        path = _append_variety(memory.workspace, i, when)
        if i % 10 == 5:  # an entry cut by a write in progress: its end arrives later
            with path.open("a", encoding="utf-8") as fh:
                fh.write("<!-- localresearch:entry log -->\n## 09:00 Chat: half\n\nhalf wri")
            await memory._pass(force=False, progress=None)
            assert memory.indexer.appended_logs == 1
            assert _indexed(paths.database, path) == _expected(path)
            with path.open("a", encoding="utf-8") as fh:
                fh.write("tten ąnswer\n<!-- /localresearch:entry -->\n\n")
        report = await memory._pass(force=False, progress=None)
        assert report.files_updated == 1 and memory.indexer.appended_logs == 1
        assert memory.indexer.deferred_logs == 0  # appends never wait for the interval
        assert _indexed(paths.database, path) == _expected(path)
    appended = _indexed(paths.database, path)
    assert len(appended) > 60 and {r[2] for r in appended} == {"note", "log"}
    # A forced pass reads the file whole: the very same chunks.
    await memory.reindex(force=True)
    assert memory.indexer.appended_logs == 0
    assert _indexed(paths.database, path) == appended
    hits = await memory.search("word3x399", 5, kinds={"log"})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert hits and "word3x399" in "\n".join(lines[hits[0].line_start - 1 : hits[0].line_end])


async def test_resume_point_survives_restarts_and_failed_writes(
    service_factory,
    paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    memory: MemoryService = await service_factory()
    when = datetime(2026, 12, 2, 9, 0).astimezone()
    for i in range(5):
        path = _append_variety(memory.workspace, i, when)
    await memory._pass(force=False, progress=None)
    await memory.stop()
    # A new daemon on the same database: it resumes where the last pass left off.
    memory = await service_factory()
    assert memory.indexer.appended_logs == 0  # nothing changed meanwhile
    path = _append_variety(memory.workspace, 5, when)
    await memory._pass(force=False, progress=None)
    assert memory.indexer.appended_logs == 1
    assert _indexed(paths.database, path) == _expected(path)

    # A write that fails half-way (after its chunks went in) leaves nothing of itself: the
    # transaction rolls back, and the next pass appends from the last committed point.
    path = _append_variety(memory.workspace, 6, when)
    calls = 0
    real = daily_log.LogState.to_json

    def failing(self: daily_log.LogState) -> str:
        nonlocal calls
        calls += 1
        raise OSError("disk went away")

    monkeypatch.setattr(daily_log.LogState, "to_json", failing)
    with pytest.raises(OSError):
        await memory._pass(force=False, progress=None)
    assert calls == 1
    monkeypatch.setattr(daily_log.LogState, "to_json", real)
    path = _append_variety(memory.workspace, 7, when)
    await memory._pass(force=False, progress=None)
    assert memory.indexer.appended_logs == 1
    assert _indexed(paths.database, path) == _expected(path)


async def test_a_rewritten_log_is_read_whole(
    service_factory,
    paths: Paths,
) -> None:  # type: ignore[no-untyped-def]
    memory: MemoryService = await service_factory()
    when = datetime(2026, 12, 2, 9, 0).astimezone()
    for i in range(4):
        path = _append_variety(memory.workspace, i, when)
    await memory._pass(force=False, progress=None)
    text = path.read_text(encoding="utf-8")
    # Edited in place before the resume point, and grown: read whole at once (never deferred:
    # the last whole read was of a different file state).
    edited = text.replace("short answer 2", "edited answer 2") + "\nmore of my notes\n"
    with path.open("r+", encoding="utf-8") as fh:
        fh.write(edited)
    memory.indexer._log_read_at.clear()
    await memory._pass(force=False, progress=None)
    assert memory.indexer.appended_logs == 0
    assert _indexed(paths.database, path) == _expected(path)
    assert await memory.search("edited", 5, kinds={"log"})
    # Replaced by a shorter file (another inode): read whole too.
    short = path.with_suffix(".tmp")
    short.write_text("# 2026-12-02\n\nonly my own words now\n", encoding="utf-8")
    os.replace(short, path)
    memory.indexer._log_read_at.clear()
    await memory._pass(force=False, progress=None)
    assert _indexed(paths.database, path) == _expected(path)
    assert not await memory.search("edited", 5, kinds={"log"})
    # Appending to it again works from the new state.
    path = _append_variety(memory.workspace, 9, when)
    memory.indexer._log_read_at.clear()
    await memory._pass(force=False, progress=None)
    await memory._pass(force=False, progress=None)  # after a whole read, appends again
    path = _append_variety(memory.workspace, 10, when)
    await memory._pass(force=False, progress=None)
    assert memory.indexer.appended_logs == 1
    assert _indexed(paths.database, path) == _expected(path)


async def test_an_edit_deep_inside_a_long_log_is_seen(
    service_factory,
    paths: Paths,
) -> None:  # type: ignore[no-untyped-def]
    memory: MemoryService = await service_factory()
    when = datetime(2026, 12, 2, 9, 0).astimezone()
    for i in range(30):
        path = _append_variety(memory.workspace, i, when)
    await memory._pass(force=False, progress=None)
    data = path.read_bytes()
    at = data.index(b"short answer 14")
    assert 16_384 < at < len(data) - 16_384  # far from the file's head and from its end
    # Same length, same inode, then an append: the new tail alone would hide the edit.
    with path.open("r+b") as fh:
        fh.seek(at)
        fh.write(b"quiet answer 14")
    path = _append_variety(memory.workspace, 30, when)
    memory.indexer._log_read_at.clear()
    await memory._pass(force=False, progress=None)
    assert memory.indexer.appended_logs == 0  # read whole
    assert _indexed(paths.database, path) == _expected(path)
    assert await memory.search("quiet", 5, kinds={"log"})


def _search(daemon: DaemonHandle, query: str) -> list[dict[str, object]]:
    status, body = call_json(
        daemon.port, "GET", f"/api/memory/search?q={quote(query)}&include_logs=true&limit=5"
    )
    assert status == 200, body
    return list(body["results"])


def _wait_hit(daemon: DaemonHandle, query: str, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = _search(daemon, query)
        if hits:
            return hits[0]
        time.sleep(0.3)
    raise AssertionError(f"{query!r} not found within {timeout} s")


def _chat(daemon: DaemonHandle, message: str) -> None:
    status, body = call_json(daemon.port, "POST", "/api/chat", {"message": message})
    assert status == 200, body


def _check_lines(daemon: DaemonHandle, hit: dict[str, object], word: str) -> None:
    assert hit["kind"] == "log"
    assert str(hit["file"]).startswith("memory/") and str(hit["file"]).endswith(".md")
    log_file = daemon.home / "workspace" / str(hit["file"])
    if not log_file.exists():
        log_file = next(daemon.home.rglob(str(hit["file"])))
    lines = log_file.read_text(encoding="utf-8").splitlines()
    start, end = int(str(hit["line_start"])), int(str(hit["line_end"]))
    assert word in "\n".join(lines[start - 1 : end])
    assert word not in "\n".join(lines[: start - 1])  # the first mention: cited where it is


@pytest.mark.slow
def test_chats_are_searchable_by_line_across_a_sigkill(daemon: DaemonHandle) -> None:
    """Chats logged by a real daemon are found with --include-logs at their own lines, also
    after the daemon was SIGKILLed and restarted on the same log."""
    for i in range(3):
        _chat(daemon, f"what about the quixotic{i} ferret{i}?")
    for i in range(3):
        _check_lines(daemon, _wait_hit(daemon, f"quixotic{i}"), f"quixotic{i}")
    pid = daemon.pid()
    assert pid is not None
    os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.05)
    daemon.start()
    for i in range(3, 6):
        _chat(daemon, f"what about the quixotic{i} ferret{i}?")
    for i in range(6):
        _check_lines(daemon, _wait_hit(daemon, f"quixotic{i}"), f"quixotic{i}")
    status, body = call_json(daemon.port, "GET", "/api/memory/search?q=quixotic1&kind=log&limit=10")
    assert status == 200 and len(body["results"]) == 1  # no chunk indexed twice
