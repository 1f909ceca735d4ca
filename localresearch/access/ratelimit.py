"""Rate limits: fixed windows counted in memory, per client and endpoint class.

Not the `limits` library: its in-memory fixed window cost ~90 µs per request here (key
building, a lock and a timer thread per hit) against ~2 µs for this (docs/architecture.md)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

MINUTE = 60
HOUR = 3600
_SWEEP_AT = 10_000  # counters kept before expired windows are dropped

# key → [window start, count]; shared by the limiters one daemon builds over its life, so a
# config change alters the limits, not what was already counted.
RateCounts = dict[tuple[str, ...], list[int]]


@dataclass(frozen=True)
class Verdict:
    """The X-RateLimit-* values of one request, and whether it may go on."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # Unix time the window ends

    def headers(self) -> dict[str, str]:
        values = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            values["Retry-After"] = str(max(1, math.ceil(self.reset - time.time())))
        return values


class RateLimiter:
    """`per_minute` requests per minute per client (0: none), and per hour per client and
    endpoint class from `hourly` (a class not in the table uses its "other" entry). Windows
    are aligned to the clock (a minute window resets at :00), as X-RateLimit-Reset says."""

    def __init__(
        self,
        per_minute: int,
        hourly: dict[str, int],
        clock: Callable[[], float] = time.time,
        *,
        window: int = HOUR,
        counts: RateCounts | None = None,
    ) -> None:
        self.per_minute = per_minute
        self.window = max(1, window)  # the endpoint classes' window (api.rate_window)
        self.hourly = {name: n for name, n in hourly.items() if n > 0}
        self._now = clock
        self._counts: RateCounts = {} if counts is None else counts

    def _hit(self, limit: int, period: int, key: tuple[str, ...], now: float) -> Verdict:
        start = int(now // period) * period
        entry = self._counts.get(key)
        if entry is None or entry[0] != start:
            if len(self._counts) >= _SWEEP_AT:
                self._sweep(now)
            entry = self._counts[key] = [start, 0]
        allowed = entry[1] < limit
        if allowed:
            entry[1] += 1
        # A limit lowered below what this window already counted: nothing remains.
        return Verdict(allowed, limit, max(0, limit - entry[1]), start + period)

    def _sweep(self, now: float) -> None:
        """Drop counters whose window has ended (an hour at most)."""
        horizon = now - max(HOUR, self.window)
        for key in [k for k, (start, _n) in self._counts.items() if start < horizon]:
            del self._counts[key]

    def check(self, client: str, rate_class: str | None) -> Verdict | None:
        """Count one request; the verdict of the tighter window (None: nothing limits it)."""
        now = self._now()
        hourly: Verdict | None = None
        if rate_class is not None:
            limit = self.hourly.get(rate_class) or self.hourly.get("other")
            if limit:
                hourly = self._hit(limit, self.window, ("h", rate_class, client), now)
                if not hourly.allowed:
                    return hourly
        if self.per_minute <= 0:
            return hourly
        minute = self._hit(self.per_minute, MINUTE, ("m", client), now)
        if hourly is None or not minute.allowed or minute.remaining < hourly.remaining:
            return minute
        return hourly
