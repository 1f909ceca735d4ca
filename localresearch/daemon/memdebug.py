"""A debugging aid for memory growth: with LOCALRESEARCH_MEMORY_DUMP=<frames> in the daemon's
environment, each SIGUSR1 appends the process's RSS (anonymous and file-backed) and glibc's
arena totals to state/memory.txt; with frames >= 1, tracemalloc runs from start-up and each dump
adds the Python heap's top growth sites since the first dump. Unset by default: tracemalloc
slows every allocation (scripts/bench_soak.py --memory-dump sets it)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import signal
import time
import tracemalloc
from pathlib import Path

ENV = "LOCALRESEARCH_MEMORY_DUMP"
TOP = 25


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _glibc_heap() -> str:
    """glibc's view of its heap: bytes in use and free inside the arenas (empty elsewhere)."""
    name = ctypes.util.find_library("c")
    if not name:
        return ""
    try:
        libc = ctypes.CDLL(name)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return ""
    mallinfo2.restype = _Mallinfo2
    info = mallinfo2()
    return (
        f"glibc arenas {info.arena / 2**20:.1f} MB, in use {info.uordblks / 2**20:.1f} MB, "
        f"free {info.fordblks / 2**20:.1f} MB, mmapped {info.hblkhd / 2**20:.1f} MB"
    )


def _sqlite_heap() -> str:
    """What SQLite itself holds (page caches of every connection, statements), if it counts."""
    name = ctypes.util.find_library("sqlite3")
    if not name:
        return ""
    try:
        used = ctypes.CDLL(name).sqlite3_memory_used
    except (OSError, AttributeError):
        return ""
    used.restype = ctypes.c_int64
    return f"sqlite {used() / 2**20:.1f} MB"


def _rss() -> str:
    """RSS from /proc/self/status: anonymous (heaps, stacks) and file-backed (code, mmaps)."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "Threads"):
                fields[name] = value.split()[0]
    mb = {k: int(v) / 1024 for k, v in fields.items() if k != "Threads"}
    return (
        f"rss {mb.get('VmRSS', 0):.1f} MB (anon {mb.get('RssAnon', 0):.1f}, "
        f"file {mb.get('RssFile', 0):.1f}), threads {fields.get('Threads', '?')}"
    )


class MemoryDump:
    """Compares tracemalloc snapshots against the first one taken."""

    def __init__(self, out: Path, frames: int) -> None:
        self.out = out
        self.frames = frames
        if frames:
            tracemalloc.start(frames)
        self.first: tracemalloc.Snapshot | None = None

    def dump(self) -> None:
        lines = [f"== {time.strftime('%H:%M:%S')} {_rss()}; {_glibc_heap()}; {_sqlite_heap()}"]
        if self.frames:
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            current, _peak = tracemalloc.get_traced_memory()
            lines.append(f"python heap traced {current / 2**20:.1f} MB")
            if self.first is None:
                self.first = snapshot
            else:
                for stat in snapshot.compare_to(self.first, "traceback")[:TOP]:
                    lines.append(f"{stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d}")
                    # file:line only: formatting source lines would fill linecache (the heap)
                    lines.extend(f"      {f.filename}:{f.lineno}" for f in stat.traceback)
        with self.out.open("a") as fh:
            fh.write("\n".join(lines) + "\n")


def install(loop: asyncio.AbstractEventLoop, state_dir: Path) -> MemoryDump | None:
    """Start tracing and dump on SIGUSR1 if the environment asks for it."""
    frames = os.environ.get(ENV, "")
    if not frames.isdigit():
        return None
    dumper = MemoryDump(state_dir / "memory.txt", int(frames))
    loop.add_signal_handler(signal.SIGUSR1, dumper.dump)
    return dumper
