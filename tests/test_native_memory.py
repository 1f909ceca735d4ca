"""The daemon's allocator hygiene (glibc arenas and trim) and its memory dump on SIGUSR1."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import signal
import time
import urllib.request

import pytest

from localresearch.daemon import native_memory
from tests.daemon_fixture import DaemonHandle

glibc = pytest.mark.skipif(native_memory._glibc() is None, reason="glibc only")


def _rss_anon_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon")


@glibc
def test_trim_gives_free_arena_pages_back() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    # 64 MB in 8 KB blocks (below the mmap threshold: they live in the arena), touched so
    # they are resident; one block allocated after them keeps the heap from shrinking alone.
    blocks = [libc.malloc(8192) for _ in range(8192)]
    for block in blocks:
        ctypes.memset(block, 1, 8192)
    keeper = libc.malloc(8192)
    for block in blocks:
        libc.free(block)
    before = _rss_anon_kb()
    native_memory.trim()
    after = _rss_anon_kb()
    libc.free(keeper)
    assert before - after > 32 * 1024, (before, after)  # most of the 64 MB went back


def test_the_users_arena_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert native_memory.limit_arenas(2) is False


def test_trim_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native_memory.TRIM_ENV, raising=False)
    assert native_memory.trim_interval() == native_memory.TRIM_EVERY_S
    monkeypatch.setenv(native_memory.TRIM_ENV, "0")
    assert native_memory.trim_interval() == 0.0
    monkeypatch.setenv(native_memory.TRIM_ENV, "soon")
    assert native_memory.trim_interval() == native_memory.TRIM_EVERY_S


def test_sigusr1_dumps_memory_when_asked(daemon_env: DaemonHandle) -> None:
    daemon_env.env["LOCALRESEARCH_MEMORY_DUMP"] = "3"
    daemon_env.start()
    try:
        pid = daemon_env.pid()
        assert pid is not None
        dump = daemon_env.home / "state" / "memory.txt"
        os.kill(pid, signal.SIGUSR1)
        for n in range(20):  # allocations between the two snapshots
            with urllib.request.urlopen(f"{daemon_env.url}/health?n={n}", timeout=10) as reply:
                assert reply.status == 200
        deadline = time.monotonic() + 20
        while dump.read_text().count("== ") < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(pid, signal.SIGUSR1)
        while dump.read_text().count("== ") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        text = dump.read_text()
        assert text.count("== ") == 2
        assert "rss " in text and "anon " in text and "python heap traced" in text
        # The second dump lists growth sites as file:line of the daemon's code.
        second = text.split("== ")[2]
        assert re.search(r"^ +\S+\.py:\d+$", second, re.MULTILINE), second
        with urllib.request.urlopen(f"{daemon_env.url}/health", timeout=10) as reply:
            assert reply.status == 200  # still serving
    finally:
        daemon_env.stop()
