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


@pytest.mark.parametrize("columns", ["80", "120", "90"])
def test_root_help_matches_clicks_own(columns: str) -> None:
    """`research --help` prints text rendered ahead (80 and >= 100 columns) or falls back to
    click (90): either way, exactly what click prints at that width (fresh processes: click
    caches a command's help option on first use)."""
    import os
    import subprocess
    import sys

    def run(code: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, COLUMNS=columns)
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)

    fast = run("import sys; from localresearch.cli.main import main; sys.exit(main(['--help']))")
    clicks = run(
        "from localresearch.cli.root import cli; cli.main(['--help'], prog_name='research')"
    )
    assert fast.returncode == clicks.returncode == 0
    assert fast.stdout == clicks.stdout
    assert "Usage: research [OPTIONS] COMMAND" in fast.stdout and "-h, --help" in fast.stdout


def test_help_does_not_import_click() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from localresearch.cli.main import main; main(['--help']);"
        "print('click' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"COLUMNS": "80"}
    )
    assert done.stderr.strip() == "False" and "Commands:" in done.stdout
