"""The pid file: who the running daemon is, robust to stale files and reused pids."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# psutil derives a start time from the boot time, which /proc/stat gives in whole seconds computed
# anew by each reader: two processes can see one process's start a second apart. A live daemon
# read that way looked dead, and a waiting starter removed its pid file. A reused pid is not
# started within seconds of the one it replaces, and its command line must match too.
CREATE_TIME_SLACK_S = 3.0


def write_pid_file(path: Path, *, url: str, port: int, version: str) -> None:
    import psutil

    pid = os.getpid()
    process = psutil.Process(pid)
    info = {
        "pid": pid,
        "create_time": process.create_time(),
        "cmd": process.cmdline(),
        "url": url,
        "port": port,
        "version": version,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info), encoding="utf-8")
    tmp.replace(path)


def read_pid_file(path: Path) -> dict[str, Any] | None:
    """The recorded daemon if the file exists and parses (it may still be stale)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    return data


def remove_pid_file(path: Path, *, only_pid: int | None = None) -> None:
    """Remove the file (if `only_pid` is given, only when it still names that process)."""
    if only_pid is not None:
        info = read_pid_file(path)
        if info is not None and info.get("pid") != only_pid:
            return
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def is_alive(info: dict[str, Any]) -> bool:
    """True only if the pid runs *and* is the process that wrote the file: same start time and
    command line. A record without them proves nothing (the pid may be anyone's by now), so it
    never gets a signal."""
    import psutil

    created = info.get("create_time")
    if not isinstance(created, (int, float)):
        return False
    try:
        process = psutil.Process(int(info["pid"]))
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        if abs(process.create_time() - float(created)) >= CREATE_TIME_SLACK_S:
            return False
        cmd = info.get("cmd")
        return cmd is None or process.cmdline() == cmd
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError, TypeError):
        return False


def running_daemon(path: Path) -> dict[str, Any] | None:
    """The live daemon's record; a stale file (process gone or pid reused) is removed."""
    info = read_pid_file(path)
    if info is None:
        if path.exists():
            remove_pid_file(path)
        return None
    if is_alive(info):
        return info
    remove_pid_file(path)
    return None
