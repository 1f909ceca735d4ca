"""`research`: the entry point. `research --help` prints text rendered ahead (help_text.py)
without importing click; every other command goes through the click group in root.py."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from localresearch.cli.root import cli

    return cli.main(args=argv, prog_name="research")


def _rendered_help() -> str | None:
    """The root's help as click would print it at this terminal's width, if rendered ahead
    for that width (click's import is most of `research --help`'s time)."""
    import shutil

    from localresearch.cli.help_text import ROOT_HELP

    # click's HelpFormatter: the terminal's columns, at most max_content_width (100), minus 2.
    width = max(min(shutil.get_terminal_size().columns, 100) - 2, 50)
    return ROOT_HELP.get(width)


def __getattr__(name: str) -> Any:
    """The click group and its command table, imported on first use (tests, gen_docs)."""
    if name in ("COMMANDS", "LazyGroup", "cli"):
        from localresearch.cli import root

        return getattr(root, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
