"""Safe edits of HEARTBEAT.md while the user may be editing it too.

Every change is a function of the file *as it is on disk right now*: re-read, apply only this
change to the one task it concerns, write a temp file, check the file did not change meanwhile
(else start over), then `os.replace`. A lock serialises our own writers (scheduler, HTTP, other
processes via a lock file), so neither they nor the user's edits are ever lost.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from localresearch.errors import Conflict, NotFound
from localresearch.heartbeat import tasks as md
from localresearch.heartbeat.template import HEARTBEAT_TEMPLATE

MAX_ATTEMPTS = 20
LOCK_TIMEOUT = 30.0

# A change maps the current text to the new text, or None when there is nothing to do.
Change = Callable[[str], str | None]


@dataclass(frozen=True)
class Snapshot:
    text: str
    mtime_ns: int
    size: int


class HeartbeatFile:
    """HEARTBEAT.md in the workspace: read it, and change it one task at a time."""

    def __init__(self, path: Path, tz: tzinfo) -> None:
        self.path = path
        self.tz = tz
        # Called between the read and the replace; tests use it to play a concurrent editor.
        self.before_replace: Callable[[], None] | None = None

    # -- reading ---------------------------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        try:
            with self.path.open("rb") as fh:
                stat = os.fstat(fh.fileno())
                data = fh.read()
        except FileNotFoundError:
            return None
        return Snapshot(
            data.decode("utf-8", errors="surrogateescape"), stat.st_mtime_ns, stat.st_size
        )

    def read(self) -> md.HeartbeatDoc:
        snap = self.snapshot()
        return md.parse(snap.text if snap else "", self.tz)

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time, across threads and processes (filelock: each acquisition is
        its own lock-file descriptor, so two threads of one process exclude each other too)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.path.with_name(f".{self.path.name}.lock"), timeout=LOCK_TIMEOUT)
        try:
            lock.acquire()
        except FileLockTimeout:
            raise Conflict(
                f"HEARTBEAT.md is being changed by another writer (waited {LOCK_TIMEOUT:g} s); "
                "try again"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def update(self, change: Change) -> bool:
        """Apply `change` to the current text atomically; False if it had nothing to do."""
        with self._locked():
            for _attempt in range(MAX_ATTEMPTS):
                before = self.snapshot()
                text = before.text if before else HEARTBEAT_TEMPLATE
                new_text = change(text)
                if new_text is None or (before is not None and new_text == text):
                    return False
                if self._replace_if_unchanged(before, new_text):
                    return True
            raise Conflict("HEARTBEAT.md kept changing while we tried to update it; try again")

    def _replace_if_unchanged(self, before: Snapshot | None, new_text: str) -> bool:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(new_text.encode("utf-8", errors="surrogateescape"))
                fh.flush()
                os.fsync(fh.fileno())
            if before is not None:
                try:
                    os.chmod(tmp, self.path.stat().st_mode & 0o7777)
                except FileNotFoundError:
                    return False  # deleted meanwhile: start over on what is there now
            if self.before_replace is not None:
                self.before_replace()
            now = self.snapshot()
            if now != before:
                return False  # the user saved meanwhile: redo the change on their version
            os.replace(tmp, self.path)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    # -- the changes the heartbeat makes ---------------------------------------------------

    def add_task(
        self,
        text: str,
        *,
        every: str | None = None,
        due: datetime | None = None,
        kind: str = "ask",
        priority: str | None = None,
    ) -> None:
        """Append a task at the end of `## Pending` (creating the section if needed)."""

        def change(current: str) -> str:
            doc = md.parse(current, self.tz)
            nl = doc.newline()
            block = md.render_task(
                text, newline=nl, every=every, due=due, kind=kind, priority=priority, tz=self.tz
            )
            return _insert_in_section(doc, "pending", block)

        self.update(change)

    def remove_task(self, task_id: str) -> md.Task:
        """Delete one pending task's block; NotFound if it is not in the file."""
        removed: list[md.Task] = []

        def change(current: str) -> str:
            doc = md.parse(current, self.tz)
            removed.clear()
            task = next((t for t in doc.pending_tasks if t.id == task_id), None)
            if task is None:
                raise NotFound(f"No schedule or task with id {task_id} in HEARTBEAT.md")
            removed.append(task)
            return _splice(doc.lines, task, "")

        self.update(change)
        return removed[0]

    def set_due(self, task: md.Task, due: datetime) -> bool:
        """Give a (recurring) task its next due time, touching only its `due` line."""

        def change(current: str) -> str | None:
            doc = md.parse(current, self.tz)
            found = _locate(doc, task)
            if found is None:
                return None
            return _splice(doc.lines, found, md.with_due(found, due, self.tz, doc.newline()))

        return self.update(change)

    def complete(self, task: md.Task, when: datetime, note: str = "") -> bool:
        """Move a one-off task to `## Completed` with a timestamp."""

        def change(current: str) -> str | None:
            doc = md.parse(current, self.tz)
            found = _locate(doc, task)
            if found is None:
                return None
            nl = doc.newline()
            without = _splice(doc.lines, found, "").splitlines(keepends=True)
            sections = md.find_sections(without)
            rest = md.HeartbeatDoc(
                without, [], [], sections.get("pending"), sections.get("completed")
            )
            return _insert_in_section(
                rest, "completed", md.completed_line(found, when, self.tz, note, nl), top=True
            )

        return self.update(change)


def _locate(doc: md.HeartbeatDoc, task: md.Task) -> md.Task | None:
    """The task as it is on disk now: same block if unchanged, else the one with the same id."""
    for candidate in doc.pending_tasks:
        if candidate.raw == task.raw:
            return candidate
    same = [c for c in doc.pending_tasks if c.id == task.id]
    return same[0] if len(same) == 1 else None


def _splice(lines: list[str], task: md.Task, replacement: str) -> str:
    start, end = task.line_start - 1, task.line_end
    return "".join([*lines[:start], replacement, *lines[end:]])


def _insert_in_section(doc: md.HeartbeatDoc, name: str, block: str, *, top: bool = False) -> str:
    """Insert a block into a section after its last item (or first, with top=True)."""
    lines = list(doc.lines)
    nl = doc.newline()
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += nl
    bounds = doc.pending if name == "pending" else doc.completed
    if bounds is None:
        title = "Pending" if name == "pending" else "Completed"
        if name == "pending" and doc.completed is not None:
            at = doc.completed[0]
            new = [f"## {title}{nl}", nl, block, nl]
            return "".join([*lines[:at], *new, *lines[at:]])
        tail = [] if not lines or lines[-1].strip() == "" else [nl]
        return "".join([*lines, *tail, f"## {title}{nl}", nl, block])
    start, end = bounds
    if top:
        at = start + 1
        while at < end and not lines[at].strip():
            at += 1
        if at < end and lines[at].lstrip().startswith("<!--"):
            while at < end and "-->" not in lines[at]:
                at += 1
            at += 1
            while at < end and not lines[at].strip():
                at += 1
    else:
        at = end
        while at > start + 1 and not lines[at - 1].strip():
            at -= 1
    prefix = [nl] if at == start + 1 else []
    suffix = [nl] if at == end and at < len(lines) else []
    return "".join([*lines[:at], *prefix, block, *suffix, *lines[at:]])
