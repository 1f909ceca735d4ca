"""HEARTBEAT.md: parsing, malformed entries kept verbatim, merge-writes under concurrent edits."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from localresearch.errors import NotFound
from localresearch.heartbeat import tasks as md
from localresearch.heartbeat.file import HeartbeatFile
from localresearch.heartbeat.template import HEARTBEAT_TEMPLATE

NY = ZoneInfo("America/New_York")

DOC = """# Heartbeat

Some intro the user wrote.

## Pending

- Summarise my notes on SQLite
  priority: high
  every: every 1d at 08:00
  due: 2026-11-26 08:00
- Survey retrieval papers
  due: 2026-11-25 09:00
  kind: research
- Broken kind task
  kind: dance
this line is not a list item
- Unknown field task
  colour: blue
- Bad schedule
  every: every fortnight
- [x] Checked but still pending
- [ ] Unchecked box task

## Completed

- [x] Old task (done 2026-11-01 10:00)
"""


@pytest.fixture
def hb(tmp_path: Path) -> HeartbeatFile:
    path = tmp_path / "HEARTBEAT.md"
    path.write_text(DOC, encoding="utf-8")
    return HeartbeatFile(path, NY)


def test_parse_tasks_and_fields() -> None:
    doc = md.parse(DOC, NY)
    pending = doc.pending_tasks
    assert [t.text for t in pending] == [
        "Summarise my notes on SQLite",
        "Survey retrieval papers",
        "Unchecked box task",
    ]
    first, second, _third = pending
    assert first.priority == md.PRIORITIES["high"]
    assert first.every is not None and first.every.at is not None
    assert first.due == datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
    assert (first.line_start, first.line_end) == (7, 10)
    assert second.kind == "research" and second.every is None
    completed = [t for t in doc.tasks if t.section == "completed"]
    assert completed[0].text.startswith("[x] Old task") or "Old task" in completed[0].text


def test_malformed_entries_are_reported_with_reasons() -> None:
    doc = md.parse(DOC, NY)
    reasons = {m.raw.splitlines()[0]: m.reason for m in doc.malformed}
    assert "kind must be ask or research" in reasons["- Broken kind task"]
    assert reasons["this line is not a list item"] == "not a list item"
    assert "unknown field 'colour'" in reasons["- Unknown field task"]
    assert "fortnight" in reasons["- Bad schedule"]
    assert "checked as done" in reasons["- [x] Checked but still pending"]
    bad = next(m for m in doc.malformed if m.raw.startswith("- Unknown"))
    assert bad.raw == "- Unknown field task\n  colour: blue\n"
    assert (bad.line_start, bad.line_end) == (17, 18)


def test_template_documents_the_format_without_running_its_example() -> None:
    doc = md.parse(HEARTBEAT_TEMPLATE, NY)
    assert doc.tasks == [] and doc.malformed == []
    assert doc.pending is not None and doc.completed is not None
    # the documented example is itself valid: pasted under Pending it reads as two tasks
    example = HEARTBEAT_TEMPLATE.split("Example (outside this comment it would run):")[1]
    example = example.split("You can also")[0]
    tasks = md.parse("## Pending\n" + example, NY)
    assert tasks.malformed == []
    assert [t.kind for t in tasks.pending_tasks] == ["ask", "research"]
    assert tasks.pending_tasks[0].every is not None


def test_ids_are_stable_and_unique() -> None:
    text = "## Pending\n\n- Same\n- Same\n"
    ids = [t.id for t in md.parse(text, NY).pending_tasks]
    assert len(set(ids)) == 2
    assert ids == [t.id for t in md.parse(text, NY).pending_tasks]


def _replace_outside(task_raw: str, before: str, after: str) -> None:
    """The bytes outside the changed task must be identical."""
    start = before.index(task_raw)
    assert after.startswith(before[:start])


def test_set_due_changes_only_that_line(hb: HeartbeatFile) -> None:
    before = hb.path.read_text()
    task = hb.read().pending_tasks[0]
    assert hb.set_due(task, datetime(2026, 11, 27, 13, 0, tzinfo=UTC))
    after = hb.path.read_text()
    assert after == before.replace("due: 2026-11-26 08:00", "due: 2026-11-27 08:00")


def test_set_due_adds_a_missing_due_line(tmp_path: Path) -> None:
    path = tmp_path / "HEARTBEAT.md"
    path.write_text("## Pending\n\n- Daily thing\n  every: 1d\n\n## Completed\n")
    hb = HeartbeatFile(path, NY)
    hb.set_due(hb.read().pending_tasks[0], datetime(2026, 11, 27, 13, 0, tzinfo=UTC))
    assert path.read_text() == (
        "## Pending\n\n- Daily thing\n  due: 2026-11-27 08:00\n  every: 1d\n\n## Completed\n"
    )


def test_complete_moves_task_and_keeps_everything_else(hb: HeartbeatFile) -> None:
    before = hb.path.read_text()
    task = hb.read().pending_tasks[1]
    assert hb.complete(task, datetime(2026, 11, 25, 14, 5, tzinfo=UTC), "research started")
    after = hb.path.read_text()
    assert "- Survey retrieval papers\n  due: 2026-11-25 09:00\n  kind: research\n" not in after
    assert (
        "## Completed\n\n- [x] Survey retrieval papers (done 2026-11-25 09:05 — research started)\n"
        "  due: 2026-11-25 09:00\n  kind: research\n- [x] Old task" in after
    )
    # every malformed entry is still there, byte for byte
    for m in md.parse(before, NY).malformed:
        assert m.raw in after
    assert after.replace(
        "- [x] Survey retrieval papers (done 2026-11-25 09:05 — research started)\n"
        "  due: 2026-11-25 09:00\n  kind: research\n",
        "",
    ) == before.replace(
        "- Survey retrieval papers\n  due: 2026-11-25 09:00\n  kind: research\n", ""
    )


def test_add_and_remove_task(hb: HeartbeatFile) -> None:
    before = hb.path.read_text()
    hb.add_task("Weekly digest", every="every 1w at 09:00", due=None, kind="research")
    doc = hb.read()
    added = [t for t in doc.pending_tasks if t.text == "Weekly digest"]
    assert added and added[0].kind == "research"
    assert len(doc.malformed) == 5
    removed = hb.remove_task(added[0].id)
    assert removed.text == "Weekly digest"
    assert hb.path.read_text() == before
    with pytest.raises(NotFound):
        hb.remove_task("nope1234")


def test_add_to_a_missing_file_creates_it_from_the_template(tmp_path: Path) -> None:
    hb = HeartbeatFile(tmp_path / "HEARTBEAT.md", NY)
    hb.add_task("First", every="1d")
    doc = hb.read()
    assert [t.text for t in doc.pending_tasks] == ["First"]
    assert "# Heartbeat" in hb.path.read_text()


def test_add_creates_pending_section_when_absent(tmp_path: Path) -> None:
    path = tmp_path / "HEARTBEAT.md"
    path.write_text("# My tasks\n\nfree text\n")
    hb = HeartbeatFile(path, NY)
    hb.add_task("First")
    assert path.read_text() == "# My tasks\n\nfree text\n\n## Pending\n\n- First\n"


def test_crlf_files_stay_crlf(tmp_path: Path) -> None:
    path = tmp_path / "HEARTBEAT.md"
    path.write_bytes(b"## Pending\r\n\r\n- One\r\n  every: 1d\r\n\r\n## Completed\r\n")
    hb = HeartbeatFile(path, NY)
    hb.add_task("Two")
    hb.set_due(hb.read().pending_tasks[0], datetime(2026, 1, 2, 13, tzinfo=UTC))
    data = path.read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"- One\r\n  due: 2026-01-02 08:00\r\n  every: 1d\r\n- Two\r\n" in data


def test_user_edit_between_read_and_replace_is_kept(hb: HeartbeatFile) -> None:
    """The user saves while we write: our change is redone on their version, theirs survives."""
    task = hb.read().pending_tasks[0]
    edits = []

    def user_saves() -> None:
        if not edits:
            text = hb.path.read_text()
            hb.path.write_text(text.replace("Some intro", "An intro the user just edited"))
            edits.append(1)

    hb.before_replace = user_saves
    assert hb.set_due(task, datetime(2026, 11, 27, 13, 0, tzinfo=UTC))
    after = hb.path.read_text()
    assert "An intro the user just edited" in after
    assert "due: 2026-11-27 08:00" in after


def test_task_edited_by_user_is_found_by_id_or_left_alone(hb: HeartbeatFile) -> None:
    task = hb.read().pending_tasks[1]  # one-off research task
    text = hb.path.read_text().replace("due: 2026-11-25 09:00\n  kind: research", "kind: research")
    hb.path.write_text(text)  # user removed the due line: same task (same id), new block
    assert hb.complete(task, datetime(2026, 11, 25, 15, tzinfo=UTC))
    assert "- [x] Survey retrieval papers" in hb.path.read_text()
    gone = md.parse(DOC, NY).pending_tasks[0]
    hb.path.write_text(hb.path.read_text().replace("Summarise my notes", "Summarise all notes"))
    assert not hb.set_due(gone, datetime(2026, 12, 1, tzinfo=UTC))  # renamed: left alone


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Many threads adding tasks while a 'user' appends lines: every change is in the file."""
    path = tmp_path / "HEARTBEAT.md"
    path.write_text(HEARTBEAT_TEMPLATE)
    writers = [HeartbeatFile(path, NY) for _ in range(4)]
    user_lock = threading.Lock()
    errors: list[BaseException] = []

    def add(hb: HeartbeatFile, n: int) -> None:
        try:
            for i in range(15):
                hb.add_task(f"task {n}-{i}")
        except BaseException as exc:
            errors.append(exc)

    def user() -> None:
        # the user's editor rewrites the whole file (read, modify, write) as editors do,
        # but through the file's own update so the test can count on the result
        for i in range(15):
            with user_lock:
                HeartbeatFile(path, NY).update(lambda text, i=i: text + f"\nuser note {i}\n")

    threads = [threading.Thread(target=add, args=(hb, n)) for n, hb in enumerate(writers)]
    threads.append(threading.Thread(target=user))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    text = path.read_text()
    doc = md.parse(text, NY)
    names = {t.text for t in doc.pending_tasks}
    assert names == {f"task {n}-{i}" for n in range(4) for i in range(15)}
    assert all(f"user note {i}" in text for i in range(15))
