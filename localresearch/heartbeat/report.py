"""What the heartbeat reports about itself: typed facts, encoded for HTTP in api/heartbeat.py
and api/status.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localresearch.heartbeat.tasks import ListedTask, Malformed


@dataclass(frozen=True)
class HeartbeatBrief:
    """Enabled, paused, the last and next run and the last result (the daemon's status)."""

    enabled: bool
    paused: bool
    last_run: datetime | None
    next_run: datetime | None
    last_result: dict[str, Any] | None  # the stored result of the last run, as recorded


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
