"""Time arithmetic: durations, `every` specs, cron, active hours, daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from localresearch.errors import InvalidRequest
from localresearch.heartbeat.cron import Cron
from localresearch.heartbeat.schedule import (
    ActiveHours,
    Every,
    format_due,
    local_zone,
    parse_due,
    parse_duration,
)

NY = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ny(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=NY, fold=fold)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2 hours", 7200),
        ("1d", 86400),
        ("1w", 604800),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5", "0m", "abc", "5 parsecs", "1h and 2m", "-1h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "step", "at"),
    [
        ("1d", timedelta(days=1), None),
        ("every 2h", timedelta(hours=2), None),
        ("daily", timedelta(days=1), None),
        ("every day at 7:30", timedelta(days=1), (7, 30)),
        ("every 1d at 08:00", timedelta(days=1), (8, 0)),
        ("weekly at 09:15", timedelta(weeks=1), (9, 15)),
        ("every 2 days", timedelta(days=2), None),
    ],
)
def test_every_forms(text: str, step: timedelta, at: tuple[int, int] | None) -> None:
    every = Every.parse(text)
    assert every.step == step
    assert (every.at.hour, every.at.minute) == at if at else every.at is None


@pytest.mark.parametrize(
    "text", ["", "every", "every 1h at 08:00", "every 1d at 25:00", "0 0 30 2 *", "1 2 3 4", "10s"]
)
def test_every_rejects(text: str) -> None:
    with pytest.raises(InvalidRequest):
        Every.parse(text)


def test_cron_weekdays_and_names() -> None:
    cron = Every.parse("0 8 * * mon-fri").cron
    assert cron is not None
    friday_noon = ny(2026, 11, 27, 12, 0)
    assert cron.next_after(friday_noon, NY) == ny(2026, 11, 30, 8, 0)  # Monday
    assert Cron.parse("*/15 9-10 1 jan *").next_after(ny(2026, 1, 1, 10, 50), NY) == ny(
        2027, 1, 1, 9, 0
    )


def test_cron_day_of_month_or_weekday() -> None:
    # classic cron: both restricted → either matches
    cron = Cron.parse("0 0 13 * 5")
    assert cron.next_after(ny(2026, 11, 1, 0, 0), NY) == ny(2026, 11, 6, 0, 0)  # a Friday
    assert cron.next_after(ny(2026, 11, 12, 1, 0), NY) == ny(2026, 11, 13, 0, 0)


def test_daily_at_keeps_wall_time_across_spring_forward() -> None:
    every = Every.parse("every 1d at 08:00")
    due = ny(2026, 3, 7, 8, 0)  # EST
    nxt = every.next_after(due, due, NY)
    assert nxt.astimezone(NY) == ny(2026, 3, 8, 8, 0)  # EDT: 23 hours later
    assert nxt - due == timedelta(hours=23)


def test_daily_at_keeps_wall_time_across_fall_back() -> None:
    every = Every.parse("every 1d at 08:00")
    due = ny(2026, 10, 31, 8, 0)
    nxt = every.next_after(due, due, NY)
    assert nxt.astimezone(NY) == ny(2026, 11, 1, 8, 0)
    assert nxt - due == timedelta(hours=25)


def test_time_in_the_spring_gap_runs_just_after_it() -> None:
    every = Every.parse("every 1d at 02:30")
    due = ny(2026, 3, 7, 2, 30)
    nxt = every.next_after(due, due, NY)
    assert nxt == utc(2026, 3, 8, 7, 30)  # 03:30 EDT, the instant 02:30 EST would have been
    again = every.next_after(nxt, nxt, NY)
    assert again.astimezone(NY).replace(tzinfo=None) == datetime(2026, 3, 9, 2, 30)


def test_elapsed_interval_ignores_wall_clock_jumps() -> None:
    every = Every.parse("30m")
    due = ny(2026, 11, 1, 1, 30)  # first 01:30 (EDT)
    nxt = every.next_after(due, due, NY)
    assert nxt - due == timedelta(minutes=30)
    assert nxt.astimezone(NY).replace(tzinfo=None) == datetime(2026, 11, 1, 1, 0)  # EST now


def test_ambiguous_due_round_trips_through_the_file_format() -> None:
    second_one_am = utc(2026, 11, 1, 6, 0)  # 01:00 EST, the second 01:00 that night
    text = format_due(second_one_am, NY)
    assert text == "2026-11-01 01:00-05:00"
    assert parse_due(text, NY) == second_one_am
    assert format_due(utc(2026, 11, 2, 13, 0), NY) == "2026-11-02 08:00"


def test_cron_runs_an_ambiguous_time_once() -> None:
    cron = Cron.parse("30 1 * * *")
    first = cron.next_after(ny(2026, 11, 1, 0, 0), NY)
    assert first == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert cron.next_after(first, NY).astimezone(NY).day == 2


def test_next_after_skips_missed_occurrences_without_drift() -> None:
    every = Every.parse("2h")
    due = utc(2026, 1, 1, 0, 0)
    now = utc(2026, 1, 1, 9, 17)
    assert every.next_after(due, now, UTC) == utc(2026, 1, 1, 10, 0)
    daily = Every.parse("every 1d at 08:00")
    assert daily.next_after(ny(2026, 1, 1, 8), ny(2026, 3, 20, 9), NY) == ny(2026, 3, 21, 8)


def test_first_due() -> None:
    now = ny(2026, 11, 25, 10, 0)
    assert Every.parse("every 1d at 08:00").first_due(now, NY) == ny(2026, 11, 26, 8, 0)
    assert Every.parse("every 1d at 18:00").first_due(now, NY) == ny(2026, 11, 25, 18, 0)
    assert Every.parse("1d").first_due(now, NY) == now
    assert Every.parse("0 * * * *").first_due(now, NY) == now  # matches right now


def test_active_hours() -> None:
    day = ActiveHours.parse("08:00-22:00")
    assert day.contains(ny(2026, 3, 8, 8, 0), NY)
    assert not day.contains(ny(2026, 3, 8, 22, 0), NY)
    assert not day.contains(ny(2026, 3, 8, 7, 59), NY)
    night = ActiveHours.parse("22:00-06:00")
    assert night.contains(ny(2026, 3, 8, 23, 0), NY)
    assert night.contains(ny(2026, 3, 8, 5, 59), NY)
    assert not night.contains(ny(2026, 3, 8, 12, 0), NY)
    assert ActiveHours.parse("").contains(ny(2026, 3, 8, 3, 0), NY)
    with pytest.raises(InvalidRequest):
        ActiveHours.parse("8-22")


def test_local_zone() -> None:
    assert str(local_zone("America/New_York")) == "America/New_York"
    with pytest.raises(InvalidRequest):
        local_zone("Mars/Olympus_Mons")
    assert local_zone("").utcoffset(datetime(2026, 1, 1)) is not None
