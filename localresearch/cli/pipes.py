"""Answers and reports as a script or file receives them: when stdout is not a terminal, the
Markdown goes out as is (no wrapping at 80 columns, no rendering), so links and citations stay
whole."""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING

import click

from localresearch.cli.common import console

if TYPE_CHECKING:
    from rich.console import Console


def to_terminal() -> bool:
    return sys.stdout.isatty()


@functools.cache
def _unwrapped() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def text_console() -> Console:
    """The console for an answer's text: wrapped to a terminal, never wrapped when piped."""
    return console() if to_terminal() else _unwrapped()


def print_markdown(text: str) -> None:
    """Markdown rendered on a terminal; written as is otherwise."""
    if to_terminal():
        from rich.markdown import Markdown

        console().print(Markdown(text))
    else:
        click.echo(text.rstrip("\n"))
