"""What gets indexed, and as what: the daemon's own writing apart from the user's notes, files
confined to their source folder, a busy daily log, and indexes from before kinds existed."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from localresearch.api.memory import ReindexReport
from localresearch.memory import kinds
from localresearch.memory.indexer import DAILY_LOG_MIN_INTERVAL_S
from localresearch.memory.prepare import daily_log_chunks
from localresearch.memory.service import MemoryService
from localresearch.paths import Paths
from localresearch.store.database import connect
from localresearch.store.migrations import _all_migrations
from localresearch.workspace import append_daily_log
from tests import test_memory_index
from tests.test_memory_index import _tree

service_factory = test_memory_index.service_factory  # the fixture, shared


def test_daily_log_entries_are_the_daemons_the_rest_is_the_users(tmp_path: Path) -> None:
    when = datetime(2026, 3, 1, 9, 30).astimezone()
    append_daily_log(
        tmp_path, "Chat: how do I?", "**Question:** how?\n\n## Answer\n\nLike so.", when
    )
    path = append_daily_log(tmp_path, "Heartbeat: feeds", "<!-- /localresearch:entry -->", when)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("## My idea\n\nPlant garlic in October.\n")
    text = path.read_text(encoding="utf-8")
    chunks = daily_log_chunks(text, 1200, 150)
    by_kind = {(c.kind, c.content.splitlines()[0]) for c in chunks}
    assert by_kind == {
        ("note", "# 2026-03-01"),
        ("log", "## 09:30 Chat: how do I?"),
        ("log", "## Answer"),  # a heading inside an answer stays in the entry
        ("digest", "## 09:30 Heartbeat: feeds"),  # a marker-like body line cannot end it
        ("note", "## My idea"),
    }
    lines = text.splitlines()
    for chunk in chunks:  # line numbers point into the file
        assert lines[chunk.line_start - 1] == chunk.content.splitlines()[0]
    # Logs written before the markers: entries are told by their headings.
    legacy = "# 2026-01-01\n\n## 10:00 Chat: hi\n\nhello\n\n## 10:05 Mine\n\nmy note\n"
    assert [(c.kind, c.line_start) for c in daily_log_chunks(legacy, 1200, 150)] == [
        ("note", 1),
        ("log", 3),
        ("note", 7),
    ]


def test_kind_filter_values() -> None:
    assert kinds.parse_kinds(None) == {"note"}
    assert kinds.parse_kinds(None, include_logs=True) == set(kinds.KINDS)
    assert kinds.parse_kinds("heartbeat,log") == {"heartbeat", "log"}
    with pytest.raises(ValueError, match="'chats'"):
        kinds.parse_kinds("chats")


async def test_symlinks_that_leave_the_source_are_refused_and_reported(
    service_factory,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    user_home = tmp_path / "userhome"
    _tree(user_home / ".ssh", {"id_x": "-----BEGIN OPENSSH PRIVATE KEY----- sesame\n"})
    notes = user_home / "notes"
    _tree(notes, {"real.md": "# Real\n\nThe orchard has twelve apple trees.\n"})
    _tree(notes / ".private", {"secret.md": "The safe code is quokka.\n"})
    (notes / "stolen_key.md").symlink_to(user_home / ".ssh" / "id_x")
    (notes / "passwd.txt").symlink_to("/etc/passwd")
    (notes / "hidden_link.md").symlink_to(notes / ".private" / "secret.md")
    (notes / "alias.md").symlink_to(notes / "real.md")  # inside the folder: fine
    memory: MemoryService = await service_factory()
    await memory.add_source(str(notes))
    report = ReindexReport.of(await memory.reindex()).to_dict()  # as the API answers
    skipped = {Path(s["path"]).name: s["reason"] for s in report["skipped_files"]}
    assert skipped["stolen_key.md"] == "link points outside the source folder"
    assert skipped["passwd.txt"] == "link points outside the source folder"
    assert skipped["hidden_link.md"] == "link points into a hidden file or folder"
    assert report["skipped_reasons"]["link points outside the source folder"] == 2
    assert "alias.md" not in skipped
    stats = await memory.stats()
    assert stats.last_reindex is not None
    assert dict(stats.last_reindex.skipped_reasons) == report["skipped_reasons"]
    for query in ("PRIVATE KEY sesame", "root bin bash", "safe code quokka"):
        assert await memory.search(query, 10, kinds=kinds.KINDS) == []
    assert {h.file for h in await memory.search("orchard apple")} == {"real.md", "alias.md"}


async def test_a_growing_daily_log_is_read_again_at_most_every_interval(
    service_factory,
    paths: Paths,
) -> None:  # type: ignore[no-untyped-def]
    """A daily log that must be read whole (no marked entries to resume after: one written by
    hand, or by a version before the markers) is reread by background passes at most every
    DAILY_LOG_MIN_INTERVAL_S; an explicit reindex reads it at once."""
    memory: MemoryService = await service_factory()
    log_file = memory.workspace / "memory" / "2026-01-01.md"
    log_file.parent.mkdir(parents=True, exist_ok=True)

    def append(title: str, body: str) -> None:
        with log_file.open("a", encoding="utf-8") as fh:
            fh.write(f"## 10:00 Chat: {title}\n\n{body}\n\n")

    append("first", "alpha answer")
    assert (await memory._pass(force=False, progress=None)).files_added == 1
    assert await memory.search("alpha", 5, kinds={"log"})
    append("second", "bravo answer")
    report = await memory._pass(force=False, progress=None)
    assert report.files_updated == 0 and memory.indexer.deferred_logs == 1
    assert memory.indexer.appended_logs == 0
    assert not await memory.search("bravo", 5, kinds={"log"})
    # Once the interval has passed, the next background pass reads it.
    memory.indexer._log_read_at[str(log_file)] -= DAILY_LOG_MIN_INTERVAL_S
    assert (await memory._pass(force=False, progress=None)).files_updated == 1
    assert await memory.search("bravo", 5, kinds={"log"})
    append("third", "charlie answer")
    assert (await memory.reindex()).files_updated == 1  # explicit: at once
    assert await memory.search("charlie", 5, kinds={"log"})


async def test_an_index_from_before_kinds_migrates_and_sorts_its_logs(
    service_factory,
    paths: Paths,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    """A database at memory.003: its chunks stay searchable at once (grams added for Chinese),
    its daily logs are read again and split into notes and the daemon's entries."""
    paths.ensure()
    conn = connect(paths.database)
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, migrate in _all_migrations():
        if name.startswith("memory.") and name >= "memory.004":  # at memory.003
            continue
        migrate(conn)
        conn.execute("INSERT INTO _migrations VALUES (?, 'then')", (name,))
    workspace = paths.default_workspace
    _tree(workspace / "memory", {"2026-01-01.md": "# 2026-01-01\n\n## 10:00 Chat: hi\n\nzebra\n"})
    log_file = workspace / "memory" / "2026-01-01.md"
    old_note = tmp_path / "old" / "sync.md"
    _tree(old_note.parent, {"sync.md": "# 同步\n\n同步速度很快\n"})
    for file_id, path, source, rel, heading, content in (
        (1, str(old_note), str(old_note.parent), "sync.md", "同步", "同步速度很快"),
        (2, str(log_file), str(workspace), "memory/2026-01-01.md", "10:00 Chat: hi", "zebra"),
    ):
        info = os.stat(path)
        conn.execute(
            "INSERT INTO memory_files VALUES (?, ?, ?, ?, 'h', ?, ?, 1, 'then')",
            (file_id, path, source, rel, info.st_size, info.st_mtime_ns),
        )
        conn.execute("INSERT INTO memory_chunks VALUES (?, ?, 1, 4)", (file_id, file_id))
        conn.execute(
            "INSERT INTO memory_fts(rowid, heading, content) VALUES (?, ?, ?)",
            (file_id, heading, content),
        )
    conn.execute("INSERT INTO memory_sources VALUES (?, '', 'then')", (str(old_note.parent),))
    conn.commit()
    conn.close()
    memory: MemoryService = await service_factory()  # migrates, then a first pass
    assert [h.file for h in await memory.search("同步")] == ["sync.md"]
    assert await memory.search("zebra") == []  # the chat entry, now sorted as a log
    assert [h.kind for h in await memory.search("zebra", 5, kinds={"log"})] == ["log"]
    check = sqlite3.connect(paths.database)
    columns = [r[1] for r in check.execute("PRAGMA table_info(memory_fts)")]
    check.close()
    assert columns == ["heading", "content", "grams"]


async def test_research_and_chat_tools_draw_on_notes_only(service_factory) -> None:  # type: ignore[no-untyped-def]
    """Deep research's retriever and the model's memory_search tool never see the daemon's
    own text (a chat answer quoting the question, a heartbeat digest, HEARTBEAT.md)."""
    from localresearch.chat.tools import ToolBox
    from localresearch.providers.base import ToolCall
    from localresearch.research.retrieval import Retriever

    memory: MemoryService = await service_factory()
    workspace = memory.workspace
    append_daily_log(workspace, "Chat: marmot burrows?", "Answer builtin: marmot burrows [2]")
    append_daily_log(workspace, "Heartbeat: marmot survey", "Export res: marmot burrows found")
    (workspace / "notes.md").write_text("# Marmots\n\nMarmot burrows have two exits.\n")
    with (workspace / "HEARTBEAT.md").open("a", encoding="utf-8") as fh:
        fh.write("\n- [ ] every 1d: survey the marmot burrows\n")
    await memory.reindex()
    every = await memory.search("marmot burrows", 10, kinds=kinds.KINDS)
    assert {h.kind for h in every} == {"note", "log", "digest", "heartbeat"}
    sources = await Retriever(memory, workspace=workspace).search("marmot burrows", 10)
    assert [s.location.split(":")[0] for s in sources] == ["notes.md"]
    tools = ToolBox(workspace, [], memory)
    found = await tools.run(ToolCall("1", "memory_search", {"query": "marmot burrows"}))
    assert found.startswith("notes.md:") and "memory/" not in found and "HEARTBEAT" not in found


def test_the_memory_template_is_never_indexed_and_old_ones_are_replaced(tmp_path: Path) -> None:
    from localresearch.memory.prepare import prepare_file
    from localresearch.workspace import _OLD_MEMORY_TEMPLATES, MEMORY_TEMPLATE, ensure_workspace

    fresh = ensure_workspace(tmp_path / "fresh")
    _digest, chunks = prepare_file(str(fresh / "MEMORY.md"), None, 1200, 150)
    assert isinstance(chunks, list)
    text = " ".join(c.content for c in chunks)
    assert "indexed" not in text and "research ask" not in text, text
    # An earlier version's template, unedited, becomes the new one; an edited file is the user's.
    old = tmp_path / "old"
    (old / "memory").mkdir(parents=True)
    (old / "MEMORY.md").write_text(_OLD_MEMORY_TEMPLATES[0], encoding="utf-8")
    ensure_workspace(old)
    assert (old / "MEMORY.md").read_text(encoding="utf-8") == MEMORY_TEMPLATE
    edited = tmp_path / "edited"
    (edited / "memory").mkdir(parents=True)
    mine = _OLD_MEMORY_TEMPLATES[0] + "My bike's frame size is 56 cm.\n"
    (edited / "MEMORY.md").write_text(mine, encoding="utf-8")
    ensure_workspace(edited)
    assert (edited / "MEMORY.md").read_text(encoding="utf-8") == mine
