"""glibc's allocator in a long-running daemon: fewer arenas and a periodic trim, so memory freed
by one thread is reused or given back instead of piling up as free space in per-thread arenas
(docs/benchmarks.md, Soak). Does nothing where glibc is not the C library."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
from typing import Any

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)
ARENAS = 2
TRIM_EVERY_S = 30.0
TRIM_ENV = "LOCALRESEARCH_MALLOC_TRIM_S"  # seconds between trims; 0 turns them off


def trim_interval() -> float:
    value = os.environ.get(TRIM_ENV, "")
    try:
        return float(value) if value else TRIM_EVERY_S
    except ValueError:
        return TRIM_EVERY_S


def _glibc() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        found = hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")
    except OSError:
        return None
    return libc if found else None


def limit_arenas(count: int) -> bool:
    """At most `count` malloc arenas from now on (call before the threads start)."""
    libc = _glibc()
    if libc is None or count < 1 or "MALLOC_ARENA_MAX" in os.environ:  # the user's choice wins
        return False
    return bool(libc.mallopt(M_ARENA_MAX, count))


def trim() -> bool:
    """Give the arenas' free pages back to the system; True if some were released."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


async def trim_every(seconds: float) -> None:
    """Trim forever, every `seconds` (a task the server cancels on shutdown)."""
    if _glibc() is None or seconds <= 0:
        return
    while True:
        await asyncio.sleep(seconds)
        trim()
