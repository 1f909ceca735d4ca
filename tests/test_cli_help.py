"""Every command explains itself: `--help` works and shows an example, for the whole tree."""

from __future__ import annotations

import click
import pytest

from localresearch.cli.main import COMMANDS, cli


def _walk(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                found.extend(_walk(sub, [*path, name]))
    return found


ALL = _walk(cli, ["research"])


def test_the_tree_is_complete() -> None:
    top = {tuple(p) for p, _ in ALL if len(p) == 2}
    assert top == {("research", name) for name in COMMANDS}


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) for p, _ in ALL])
def test_help_has_an_example(path: list[str], command: click.Command) -> None:
    ctx = click.Context(command, info_name=" ".join(path))
    text = command.get_help(ctx)
    assert "Example" in text, f"`{' '.join(path)} --help` shows no example"
