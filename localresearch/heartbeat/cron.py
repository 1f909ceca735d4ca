"""A small five-field cron evaluator in local wall time (no dependency, DST-aware via zoneinfo)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from localresearch.errors import InvalidRequest

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (low, high, names) for minute, hour, day of month, month, day of week
_FIELDS: tuple[tuple[int, int, list[str]], ...] = (
    (0, 59, []),
    (0, 23, []),
    (1, 31, []),
    (1, 12, _MONTHS),
    (0, 7, _DAYS),
)
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MAX_YEARS = 5  # a spec like "0 0 30 2 *" never matches; stop searching instead of looping


def looks_like_cron(text: str) -> bool:
    """Five fields made of cron characters: worth trying to parse as cron."""
    parts = text.split()
    allowed = set("0123456789*/,-?") | set("abcdefghijklmnopqrstuvwxyz")
    return len(parts) == 5 and all(set(p.lower()) <= allowed for p in parts)


def _value(token: str, low: int, names: list[str]) -> int:
    lowered = token.lower()
    if lowered in names:
        return names.index(lowered) + (1 if low == 1 else 0)
    if not token.isdigit():
        raise ValueError(f"not a number: {token!r}")
    return int(token)


def _parse_field(text: str, low: int, high: int, names: list[str]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"bad step in {part!r}")
            step = int(step_text)
        if body in ("*", "?"):
            start, end = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            start, end = _value(a, low, names), _value(b, low, names)
        else:
            start = _value(body, low, names)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ValueError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression: minute hour day-of-month month day-of-week."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        parts = text.split()
        if len(parts) != 5:
            raise InvalidRequest(f"cron expression needs 5 fields, got {len(parts)}: {text!r}")
        try:
            sets = [
                _parse_field(p, lo, hi, names)
                for p, (lo, hi, names) in zip(parts, _FIELDS, strict=True)
            ]
        except ValueError as exc:
            raise InvalidRequest(f"bad cron expression {text!r}: {exc}") from None
        weekdays = frozenset(d % 7 for d in sets[4])
        if parts[4] in ("*", "?") and not any(
            day <= _MONTH_DAYS[month - 1] for month in sets[3] for day in sets[2]
        ):
            raise InvalidRequest(f"cron expression {text!r} never matches")
        return cls(
            text=" ".join(parts),
            minutes=sets[0],
            hours=sets[1],
            days=sets[2],
            months=sets[3],
            weekdays=weekdays,
            any_day=parts[2] in ("*", "?"),
            any_weekday=parts[4] in ("*", "?"),
        )

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow  # classic cron: either restriction matches

    def next_after(self, after: datetime, tz: tzinfo) -> datetime:
        """The first matching local wall time strictly after `after`, in UTC.

        A wall time skipped by a DST jump runs at the equivalent instant just after the jump; a
        wall time that occurs twice (clocks going back) runs once, at its first occurrence.
        """
        after_utc = after.astimezone(UTC)
        day = after.astimezone(tz).date()
        end = day + timedelta(days=366 * _MAX_YEARS)
        while day <= end:
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = datetime.combine(day, time(hour, minute), tzinfo=tz)
                        if candidate.astimezone(UTC) > after_utc:
                            return candidate.astimezone(UTC)
            day += timedelta(days=1)
        raise InvalidRequest(f"cron expression {self.text!r} never matches")
