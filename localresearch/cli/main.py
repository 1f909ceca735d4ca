"""`research`: the entry point. `research --help` prints text rendered ahead (help_text.py)
without importing click; every other command goes through the click group in root.py."""

from __future__ import annotations

import os
import sys

# typing and shutil are not imported on this path: together they cost more than the rest of
# `research --help` (mypy reads any name TYPE_CHECKING as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from localresearch.cli.root import COMMANDS, LazyGroup, cli

__all__ = ["COMMANDS", "LazyGroup", "cli", "main"]


def main(argv: list[str] | None = None) -> Any:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--help"], ["-h"]):
        text = _rendered_help()
        if text is not None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return 0
    if args[:2] == ["daemon", "start"]:
        # The daemon's child imports the server while this process imports click.
        from localresearch.daemon.process import fork_early

        fork_early(args[2:])
    from localresearch.cli.root import cli

    return cli.main(args=argv, prog_name="research")


def _rendered_help() -> str | None:
    """The root's help as click would print it at this terminal's width, if rendered ahead
    for that width (click's import is most of `research --help`'s time)."""
    from localresearch.cli.help_text import ROOT_HELP

    # click's HelpFormatter: the terminal's columns, at most max_content_width (100), minus 2.
    width = max(min(_columns(), 100) - 2, 50)
    return ROOT_HELP.get(width)


def _columns() -> int:
    """shutil.get_terminal_size().columns, without importing shutil: $COLUMNS, else the
    terminal on stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        size = os.get_terminal_size(sys.__stdout__.fileno())  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80
    return size.columns or 80


def __getattr__(name: str) -> Any:
    """The click group and its command table, imported on first use (tests, gen_docs)."""
    if name in ("COMMANDS", "LazyGroup", "cli"):
        from localresearch.cli import root

        return getattr(root, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
