"""Heartbeat and schedules (tasks of HEARTBEAT.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from localresearch.api.base import Model

if TYPE_CHECKING:
    from localresearch.heartbeat import report


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
            last_result=brief.last_result,
            interval=format_duration(status.interval),
            timeout=format_duration(status.timeout),
            active_hours=status.active_hours,
            timezone=status.timezone,
            file=status.file,
            pending=status.pending,
            malformed=status.malformed,
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
    schedules: list[dict[str, Any]]
