"""Time as the scheduler sees it: injectable, so schedules are tested without sleeping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol

MAX_NAP = 60.0  # re-check the wall clock at least this often (suspend, clock changes)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""

    async def sleep_until(self, when: datetime) -> None:
        """Return once `now() >= when` (at once if it already is)."""


class SystemClock:
    """The real clock; naps in short steps so a suspended laptop wakes up on time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        while True:
            delta = (when - self.now()).total_seconds()
            if delta <= 0:
                return
            await asyncio.sleep(min(delta, MAX_NAP))


class ManualClock:
    """A clock that moves only when told to (tests, simulations)."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((when, future))
        try:
            await future
        finally:
            self._sleepers = [(w, f) for w, f in self._sleepers if f is not future]

    def set(self, when: datetime) -> None:
        """Jump to `when`, waking every sleeper whose time has come."""
        self._now = when.astimezone(UTC)
        for wake_at, future in list(self._sleepers):
            if wake_at <= self._now and not future.done():
                future.set_result(None)

    def advance(self, delta: timedelta) -> None:
        self.set(self._now + delta)

    @property
    def sleepers(self) -> int:
        return sum(1 for _, future in self._sleepers if not future.done())
