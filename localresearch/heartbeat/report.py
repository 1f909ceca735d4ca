"""What the heartbeat reports about itself: typed facts, encoded for HTTP in api/heartbeat.py
and api/status.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NotRequired, TypedDict

if TYPE_CHECKING:
    from localresearch.heartbeat.tasks import ListedTask, Malformed


class TaskOutcome(TypedDict):
    """One task's part of a heartbeat's result; the fields after `status` depend on it: ok or
    started (summary, link), failed or timeout (error, attempts), finished (a research job that
    an earlier heartbeat started; summary, link), error (the heartbeat itself failed: error)."""

    id: NotRequired[str]
    text: NotRequired[str]
    kind: NotRequired[str]  # ask | research
    status: str  # ok | started | failed | timeout | finished | error
    summary: NotRequired[str]
    link: NotRequired[str | None]
    error: NotRequired[str]
    attempts: NotRequired[int]


class RunResult(TypedDict):
    """One heartbeat's result, returned by a run and stored as the last result: JSON as it is,
    so it is recorded and served unchanged (POST /api/heartbeat/run, the status's last_result)."""

    status: str  # ok | partial | timeout | error
    trigger: str  # manual | schedule | recovery
    started_at: str | None  # ISO-8601 UTC
    finished_at: str | None
    ran: int
    failed: int
    tasks: list[TaskOutcome]


@dataclass(frozen=True)
class HeartbeatBrief:
    """Enabled, paused, the last and next run and the last result (the daemon's status)."""

    enabled: bool
    paused: bool
    last_run: datetime | None
    next_run: datetime | None
    last_result: RunResult | None  # the stored result of the last run, as recorded


@dataclass(frozen=True)
class HeartbeatStatus:
    """The brief, plus the settings in force and HEARTBEAT.md's pending and malformed entries."""

    brief: HeartbeatBrief
    running: bool
    interval: timedelta
    timeout: timedelta
    active_hours: str | None
    timezone: str
    file: str
    pending: list[ListedTask]  # tasks as HEARTBEAT.md lists them
    malformed: list[Malformed]  # entries it cannot read, kept as written
