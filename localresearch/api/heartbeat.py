"""Heartbeat and schedules (tasks of HEARTBEAT.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from localresearch.api.base import Model

if TYPE_CHECKING:
    from localresearch.heartbeat import report, tasks


class Task(Model):
    id: str
    text: str
    section: str
    kind: str
    priority: str
    every: str | None
    due: str | None
    due_local: str | None
    line_start: int
    line_end: int

    @classmethod
    def of(cls, task: tasks.ListedTask) -> Task:
        from localresearch.heartbeat.state import iso

        return cls(
            id=task.id,
            text=task.text,
            section=task.section,
            kind=task.kind,
            priority=task.priority,
            every=task.every,
            due=iso(task.due),
            due_local=task.due_local,
            line_start=task.line_start,
            line_end=task.line_end,
        )


class Malformed(Model):
    """An entry of HEARTBEAT.md the heartbeat cannot read, as written."""

    line_start: int
    line_end: int
    text: str
    reason: str

    @classmethod
    def of(cls, entry: tasks.Malformed) -> Malformed:
        return cls(
            line_start=entry.line_start,
            line_end=entry.line_end,
            text=entry.text,
            reason=entry.reason,
        )


class HeartbeatStatus(Model):
    enabled: bool
    paused: bool
    running: bool
    last_run: str | None
    next_run: str | None
    last_result: dict[str, Any] | None
    interval: str
    timeout: str
    active_hours: str | None
    timezone: str
    file: str
    # Documented as plain objects (docs/api.md): the items are Task and Malformed.
    pending: list[dict[str, Any]]
    malformed: list[dict[str, Any]]

    @classmethod
    def of(cls, status: report.HeartbeatStatus) -> HeartbeatStatus:
        from localresearch.heartbeat.schedule import format_duration
        from localresearch.heartbeat.state import iso

        brief = status.brief
        return cls(
            enabled=brief.enabled,
            paused=brief.paused,
            running=status.running,
            last_run=iso(brief.last_run),
            next_run=iso(brief.next_run),
            last_result=cast("dict[str, Any] | None", brief.last_result),  # stored JSON
            interval=format_duration(status.interval),
            timeout=format_duration(status.timeout),
            active_hours=status.active_hours,
            timezone=status.timezone,
            file=status.file,
            pending=[Task.of(t).to_dict() for t in status.pending],
            malformed=[Malformed.of(m).to_dict() for m in status.malformed],
        )


class HeartbeatResult(Model):
    status: str
    trigger: str
    started_at: str | None
    finished_at: str | None
    ran: int
    failed: int
    tasks: list[dict[str, Any]]


class AddSchedule(Model):
    every: str
    question: str
    kind: str = "ask"
    priority: str | None = None


class ScheduleList(Model):
    schedules: list[dict[str, Any]]  # Task objects, documented as plain objects

    @classmethod
    def of(cls, listed: list[tasks.ListedTask]) -> ScheduleList:
        return cls(schedules=[Task.of(t).to_dict() for t in listed])
