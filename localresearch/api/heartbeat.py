"""Heartbeat and schedules (tasks of HEARTBEAT.md)."""

from __future__ import annotations

from typing import Any

from localresearch.api.base import Model


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
