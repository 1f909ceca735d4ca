"""Recurring tasks as the API and CLI see them: add, list, remove, all in HEARTBEAT.md.

Plain functions over a `HeartbeatFile`, so the daemon (HTTP) and the CLI without a daemon make
exactly the same atomic, merging edits; the file stays the one truth.
"""

from __future__ import annotations

from datetime import datetime

from localresearch.errors import Conflict, InvalidRequest
from localresearch.heartbeat.file import HeartbeatFile
from localresearch.heartbeat.schedule import Every
from localresearch.heartbeat.tasks import KINDS, PRIORITIES, ListedTask

MAX_TEXT = 2000


def list_schedules(file: HeartbeatFile) -> list[ListedTask]:
    """The recurring tasks under Pending, with their next due time."""
    doc = file.read()
    return [t.listed(file.tz) for t in doc.pending_tasks if t.recurring]


def add_schedule(
    file: HeartbeatFile,
    every: str,
    question: str,
    now: datetime,
    *,
    kind: str = "ask",
    priority: str | None = None,
) -> ListedTask:
    """Append a recurring task (first due at its next matching time) and return it as read back."""
    text = " ".join(question.split())
    if not text:
        raise InvalidRequest("The question must not be empty")
    if len(text) > MAX_TEXT:
        raise InvalidRequest(f"The question is too long (limit: {MAX_TEXT} characters)")
    if kind not in KINDS:
        raise InvalidRequest("kind must be ask or research")
    if priority is not None and priority not in PRIORITIES:
        raise InvalidRequest("priority must be high, normal or low")
    spec = Every.parse(every)
    due = spec.first_due(now, file.tz)
    file.add_task(text, every=spec.text, due=due, kind=kind, priority=priority)
    added = [t for t in file.read().pending_tasks if t.text == text and t.every == spec]
    if not added:
        raise Conflict("The schedule was written but could not be read back")
    return added[-1].listed(file.tz)


def remove_schedule(file: HeartbeatFile, task_id: str) -> ListedTask:
    """Delete one pending task by id (NotFound if absent); returns what was removed."""
    return file.remove_task(task_id).listed(file.tz)
