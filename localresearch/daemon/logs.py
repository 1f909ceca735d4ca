"""The daemon's log: a rotating file, or stderr in the foreground."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from localresearch.redaction import RedactingFormatter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(
    level: str, *, log_file: Path | None, max_bytes: int = 5_242_880, backups: int = 3
) -> None:
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
    handler.setFormatter(RedactingFormatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(
        logging.DEBUG if level.lower() == "debug" else logging.WARNING
    )


def tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a file (empty if it does not exist)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return [line.rstrip("\n") for line in deque(fh, maxlen=lines)]
    except FileNotFoundError:
        return []


def follow(path: Path, *, poll: float = 0.25) -> Iterator[str]:
    """Yield lines appended to the log, surviving rotation (like `tail -F`)."""
    position = path.stat().st_size if path.exists() else 0
    inode = path.stat().st_ino if path.exists() else None
    while True:
        try:
            stat = path.stat()
        except FileNotFoundError:
            time.sleep(poll)
            continue
        if stat.st_ino != inode or stat.st_size < position:
            inode, position = stat.st_ino, 0
        if stat.st_size > position:
            with path.open(encoding="utf-8", errors="replace") as fh:
                fh.seek(position)
                chunk = fh.read()
                position = fh.tell()
            yield from chunk.splitlines()
        else:
            time.sleep(poll)
