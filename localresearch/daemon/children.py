"""Worker processes die with the daemon: a SIGKILLed daemon must not leave its indexing
workers (and through them multiprocessing's resource tracker) running."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: ask Linux to SIGKILL this process when its parent dies; exit now if
    the parent is already gone (it died between the spawn and this call)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the check below stays
            pass
    if os.getppid() != parent_pid:
        os._exit(0)
