"""Time arithmetic for the heartbeat: durations, `every` specs, active hours, the local zone.

Sub-day intervals (`30m`, `2h`) step in elapsed time; day and week steps (`1d`, `every 1w at 08:00`)
and cron expressions step in local wall time, so 08:00 stays 08:00 across daylight-saving changes.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from localresearch.errors import InvalidRequest
from localresearch.heartbeat.cron import Cron, looks_like_cron

MAX_DURATION = 3650 * 86400  # ten years: longer is a typo, and timedelta would overflow
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WORDS = {
    "second": "s",
    "sec": "s",
    "minute": "m",
    "min": "m",
    "hour": "h",
    "day": "d",
    "week": "w",
}
_ALIASES = {"hourly": "1h", "daily": "1d", "weekly": "1w"}
_DURATION = re.compile(r"(\d+)\s*([a-z]+)")
_AT = re.compile(r"^(.*?)\s+at\s+(\d{1,2}):(\d{2})$")
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


def parse_duration(text: str) -> timedelta:
    """`30m`, `1h30m`, `2 hours`, `1d` → a positive timedelta (InvalidRequest otherwise)."""
    raw = text.strip().lower()
    if not raw:
        raise InvalidRequest("empty duration")
    if raw.isdigit():
        raise InvalidRequest(f"duration {text!r} needs a unit (s, m, h, d or w), e.g. 30m")
    seconds = 0
    pos = 0
    for match in _DURATION.finditer(raw):
        if raw[pos : match.start()].strip(" ,"):
            break
        unit = match.group(2)
        unit = _WORDS.get(unit.rstrip("s"), _WORDS.get(unit, unit))
        if unit not in _UNITS:
            raise InvalidRequest(f"unknown unit in duration {text!r} (use s, m, h, d or w)")
        seconds += int(match.group(1)) * _UNITS[unit]
        pos = match.end()
    if pos != len(raw) or seconds <= 0:
        raise InvalidRequest(f"bad duration {text!r} (examples: 30m, 2h, 1d, 1h30m)")
    if seconds > MAX_DURATION:
        raise InvalidRequest(f"duration {text!r} is too long (at most 3650d)")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _parse_hhmm(text: str) -> time:
    match = _HHMM.match(text.strip())
    if not match or int(match.group(1)) > 24 or int(match.group(2)) > 59:
        raise InvalidRequest(f"bad time of day {text!r} (use HH:MM, e.g. 08:00)")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours == 24:
        if minutes:
            raise InvalidRequest(f"bad time of day {text!r}")
        return time(0, 0)
    return time(hours, minutes)


@dataclass(frozen=True)
class Every:
    """A recurrence: a step (elapsed or calendar), optionally at a wall time, or a cron spec."""

    text: str
    step: timedelta | None = None
    at: time | None = None
    cron: Cron | None = None

    @classmethod
    def parse(cls, text: str) -> Every:
        """`1d`, `every 2h`, `every 1d at 08:00`, `daily at 7:30`, `0 8 * * 1-5`."""
        return _parse_every(text)

    @classmethod
    def _parse(cls, text: str) -> Every:
        raw = " ".join(text.strip().split())
        body = raw[6:] if raw.lower().startswith("every ") else raw
        if not body:
            raise InvalidRequest("empty schedule (examples: 1d, every 1d at 08:00, 0 8 * * 1-5)")
        if looks_like_cron(body) and not _DURATION.fullmatch(body.lower()):
            return cls(text=raw, cron=Cron.parse(body))
        at: time | None = None
        match = _AT.match(body)
        if match:
            body = match.group(1)
            at = _parse_hhmm(f"{match.group(2)}:{match.group(3)}")
        lowered = body.lower()
        lowered = _ALIASES.get(lowered, lowered)
        if lowered in _WORDS or lowered.rstrip("s") in _WORDS:
            lowered = "1" + lowered
        step = parse_duration(lowered)
        if at is not None and step.total_seconds() % 86400:
            raise InvalidRequest(f"'at HH:MM' needs a step of whole days or weeks: {text!r}")
        if step < timedelta(minutes=1):
            raise InvalidRequest(f"schedule {text!r} is too frequent (at least 1m)")
        return cls(text=raw, step=step, at=at)

    @property
    def calendar(self) -> bool:
        """Whole-day steps follow the wall clock; shorter ones follow elapsed time."""
        return self.step is not None and self.step.total_seconds() % 86400 == 0

    def first_due(self, now: datetime, tz: tzinfo) -> datetime:
        """When a newly added task first runs: the next matching time, or now for plain steps."""
        if self.cron is not None:
            return self.cron.next_after(now - timedelta(microseconds=1), tz)
        if self.at is not None:
            local = now.astimezone(tz)
            candidate = _wall(local.date(), self.at, tz)
            if candidate < now.astimezone(UTC):
                candidate = _wall(local.date() + timedelta(days=1), self.at, tz)
            return candidate
        return now.astimezone(UTC)

    def next_after(self, due: datetime, now: datetime, tz: tzinfo) -> datetime:
        """The next due time on this task's grid (anchored at `due`) that is strictly after `now`.

        Stepping from the previous due time, not from when the run finished, keeps the schedule
        from drifting; missed occurrences are skipped rather than run in a burst.
        """
        now_utc = now.astimezone(UTC)
        if self.cron is not None:
            return self.cron.next_after(max(now_utc, due.astimezone(UTC)), tz)
        assert self.step is not None
        due_utc = due.astimezone(UTC)
        if not self.calendar:
            if due_utc > now_utc:
                return due_utc
            periods = (now_utc - due_utc) // self.step + 1
            return due_utc + periods * self.step
        days = int(self.step.total_seconds() // 86400)
        local = due.astimezone(tz)
        wall = self.at or local.time().replace(tzinfo=None, fold=0)
        day = local.date()
        candidate = _wall(day, wall, tz)
        if candidate > now_utc:
            return candidate
        # jump close to now first so a long downtime does not loop day by day
        skip = max(0, (now_utc.astimezone(tz).date() - day).days // days - 1)
        day += timedelta(days=skip * days)
        while True:
            candidate = _wall(day, wall, tz)
            if candidate > now_utc:
                return candidate
            day += timedelta(days=days)


@functools.lru_cache(maxsize=512)
def _parse_every(text: str) -> Every:
    """Each heartbeat re-reads every task; parse each distinct `every` text once."""
    return Every._parse(text)


def _wall(day: object, at: time, tz: tzinfo) -> datetime:
    """A local wall time as UTC; a time inside a DST gap maps to the instant just after it."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ActiveHours:
    """A daily local window like 08:00-22:00 (may wrap past midnight); empty means always."""

    start: time | None = None
    end: time | None = None

    @classmethod
    def parse(cls, text: str) -> ActiveHours:
        raw = text.strip()
        if not raw:
            return cls()
        first, sep, second = raw.partition("-")
        if not sep:
            raise InvalidRequest(f"bad active_hours {text!r} (use HH:MM-HH:MM, e.g. 08:00-22:00)")
        start, end = _parse_hhmm(first), _parse_hhmm(second)
        if start == end:
            return cls()
        return cls(start, end)

    @property
    def always(self) -> bool:
        return self.start is None

    def contains(self, when: datetime, tz: tzinfo) -> bool:
        if self.start is None or self.end is None:
            return True
        local = when.astimezone(tz).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def describe(self) -> str:
        if self.start is None or self.end is None:
            return ""
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def local_zone(name: str = "") -> tzinfo:
    """The IANA zone to use: the configured name, $TZ, /etc/localtime, else the fixed offset."""
    for candidate in (name, os.environ.get("TZ", "").lstrip(":")):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
                if candidate == name:
                    raise InvalidRequest(f"unknown time zone {name!r}") from exc
    localtime = Path("/etc/localtime")
    try:
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
        with localtime.open("rb") as fh:
            return ZoneInfo.from_file(fh, key="localtime")
    except (OSError, ZoneInfoNotFoundError, ValueError):
        pass
    fallback = datetime.now().astimezone().tzinfo
    return fallback if fallback is not None else UTC


def parse_due(text: str, tz: tzinfo) -> datetime:
    """`2026-11-26 08:00`, `2026-11-26T08:00`, `2026-11-26` (local) or an ISO time with offset."""
    raw = text.strip()
    try:
        parsed = datetime.fromisoformat(raw.replace(" ", "T", 1) if " " in raw else raw)
    except ValueError:
        raise InvalidRequest(f"bad due time {text!r} (use YYYY-MM-DD HH:MM)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def format_due(when: datetime, tz: tzinfo) -> str:
    """Local wall time as written in HEARTBEAT.md (minute precision).

    A wall time that occurs twice (clocks going back) also gets its UTC offset, so it reads back
    as the same instant.
    """
    local = when.astimezone(tz)
    text = local.strftime("%Y-%m-%d %H:%M")
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        offset = local.strftime("%z")
        text += f"{offset[:3]}:{offset[3:]}"
    return text
