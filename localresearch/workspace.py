"""The user's workspace: MEMORY.md, HEARTBEAT.md and the daily logs under memory/."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path

from localresearch.config import Config
from localresearch.paths import Paths

# The guidance is a comment: comments are not indexed, so the daemon's own words are never cited
# as the user's notes.
MEMORY_TEMPLATE = """# Memory

<!-- Long-term notes for localresearch: write here what you want remembered. Everything in this
workspace is indexed and searchable (`research memory search "..."`), and `research ask` answers
from it. This comment itself is not indexed. -->

"""
# Templates of earlier versions, replaced when the file still holds one of them unedited.
_OLD_MEMORY_TEMPLATES = (
    """# Memory

Long-term notes for localresearch. Everything in this workspace is indexed and searchable:
`research memory search "..."`, and `research ask` answers from it.

""",
)

_log_lock = threading.Lock()


def workspace_dir(config: Config, paths: Paths) -> Path:
    configured = config.memory.workspace
    return Path(configured).expanduser().resolve() if configured else paths.default_workspace


class WorkspaceError(Exception):
    """The workspace folder cannot be used; the message names the path."""


def prepare_workspace_dir(workspace: Path) -> None:
    """Create the workspace folder (and its memory/) before the daemon binds, so that one it
    cannot use fails `daemon start`, naming the path, instead of every later request."""
    try:
        (workspace / "memory").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(
            f"cannot use the workspace {workspace} (memory.workspace): "
            f"{exc.filename or workspace}: {exc.strerror}"
        ) from None


def ensure_workspace(workspace: Path) -> Path:
    """Create the workspace and its standard files on first start; never overwrite them."""
    from localresearch.heartbeat.template import HEARTBEAT_TEMPLATE

    (workspace / "memory").mkdir(parents=True, exist_ok=True)
    for name, text in (("MEMORY.md", MEMORY_TEMPLATE), ("HEARTBEAT.md", HEARTBEAT_TEMPLATE)):
        target = workspace / name
        if not target.exists():
            target.write_text(text, encoding="utf-8")
    _upgrade_memory_template(workspace / "MEMORY.md")
    return workspace


def _upgrade_memory_template(target: Path) -> None:
    """An unedited template of an earlier version held the daemon's words as indexed text."""
    try:
        if target.stat().st_size > 1024:
            return
        current = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    if current in _OLD_MEMORY_TEMPLATES:
        target.write_text(MEMORY_TEMPLATE, encoding="utf-8")


def daily_log_path(workspace: Path, when: datetime | None = None) -> Path:
    when = when or datetime.now().astimezone()
    return workspace / "memory" / f"{when:%Y-%m-%d}.md"


def append_daily_log(workspace: Path, title: str, body: str, when: datetime | None = None) -> Path:
    """Append one entry to the day's log (local date): searchable on request, never evidence.

    The entry sits between marker comments (memory/kinds.py) so the index tells it from the
    user's own notes in the same file."""
    from localresearch.memory.kinds import ENTRY_BEGIN, ENTRY_END, entry_kind

    when = when or datetime.now().astimezone()
    path = daily_log_path(workspace, when)
    path.parent.mkdir(parents=True, exist_ok=True)
    title = title.strip()
    begin = ENTRY_BEGIN.format(kind=entry_kind(title))
    # A body line that looks like a marker would end the entry early: indent it.
    lines = [f" {line}" if line.startswith("<!-- ") else line for line in body.strip().split("\n")]
    entry = f"{begin}\n## {when:%H:%M} {title}\n\n" + "\n".join(lines) + f"\n{ENTRY_END}\n\n"
    with _log_lock:
        new = not path.exists()
        with path.open("a", encoding="utf-8") as fh:
            if new:
                fh.write(f"# {when:%Y-%m-%d}\n\n")
            fh.write(entry)
            fh.flush()
            os.fsync(fh.fileno())
    return path
