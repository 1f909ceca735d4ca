"""One daemon per home: an exclusive lock on `<state>/daemon.lock`, taken before the daemon
binds and held for its whole life (the kernel drops it when the process dies, even by SIGKILL),
so a second daemon, or a second starter, can tell at once that the home is taken."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class HomeLock:
    """An flock on the home's lock file, through one file descriptor that a forked daemon
    inherits (the lock then belongs to both until the starter closes its copy)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False if a daemon (or a starter) holds it."""
        if self.fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        """Close this process's copy (a forked daemon keeps holding its own)."""
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def home_is_locked(path: Path) -> bool:
    """True if a live process holds the home's lock (a daemon runs or is starting)."""
    probe = HomeLock(path)
    if probe.try_acquire():
        probe.release()
        return False
    return True
