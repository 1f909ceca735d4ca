"""Argument checks several commands share: a blank question or path is a usage error (exit 2)."""

from __future__ import annotations

from typing import Any

import click


def question_text(ctx: click.Context, param: click.Parameter, value: Any) -> str:
    """The QUESTION argument's callback: the words joined (for nargs=-1), never blank."""
    text = " ".join(value) if isinstance(value, tuple) else str(value)
    text = text.strip()
    if not text:
        # The same words for every command, whether it takes one QUESTION or several words.
        raise click.BadParameter("the question is empty", ctx, param, param_hint="'QUESTION'")
    return text


class NonEmptyPath(click.Path):
    """A click.Path that refuses "" and blanks (which would otherwise resolve to the current
    directory)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("the path is empty", param, ctx)
        return super().convert(value, param, ctx)
