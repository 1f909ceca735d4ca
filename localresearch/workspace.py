"""The user's workspace: MEMORY.md, HEARTBEAT.md and the daily logs under memory/."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path

from localresearch.config import Config
from localresearch.paths import Paths

MEMORY_TEMPLATE = """# Memory

Long-term notes for localresearch. Everything in this workspace is indexed and searchable:
`research memory search "..."`, and `research ask` answers from it.

"""

_log_lock = threading.Lock()


def workspace_dir(config: Config, paths: Paths) -> Path:
    configured = config.memory.workspace
    return Path(configured).expanduser().resolve() if configured else paths.default_workspace


def ensure_workspace(workspace: Path) -> Path:
    """Create the workspace and its standard files on first start; never overwrite them."""
    from localresearch.heartbeat.template import HEARTBEAT_TEMPLATE

    (workspace / "memory").mkdir(parents=True, exist_ok=True)
    for name, text in (("MEMORY.md", MEMORY_TEMPLATE), ("HEARTBEAT.md", HEARTBEAT_TEMPLATE)):
        target = workspace / name
        if not target.exists():
            target.write_text(text, encoding="utf-8")
    return workspace


def daily_log_path(workspace: Path, when: datetime | None = None) -> Path:
    when = when or datetime.now().astimezone()
    return workspace / "memory" / f"{when:%Y-%m-%d}.md"


def append_daily_log(workspace: Path, title: str, body: str, when: datetime | None = None) -> Path:
    """Append one entry to the day's log (local date) so it becomes searchable memory."""
    when = when or datetime.now().astimezone()
    path = daily_log_path(workspace, when)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = f"## {when:%H:%M} {title.strip()}\n\n{body.strip()}\n\n"
    with _log_lock:
        new = not path.exists()
        with path.open("a", encoding="utf-8") as fh:
            if new:
                fh.write(f"# {when:%Y-%m-%d}\n\n")
            fh.write(entry)
            fh.flush()
            os.fsync(fh.fileno())
    return path
