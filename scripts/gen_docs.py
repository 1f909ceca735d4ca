"""Regenerate the docs that are derived from code: config.toml.example, docs/configuration.md,
docs/cli.md and the root help rendered ahead (localresearch/cli/help_text.py). Tests fail when
these are out of date."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from localresearch.config.loader import describe, example_toml  # noqa: E402

CONFIG_INTRO = """# Configuration

localresearch reads `config.toml` from the path printed by `research config path`
(`$LOCALRESEARCH_HOME/config.toml` when that variable is set; otherwise the platform's user
config directory, e.g. `~/.config/localresearch/config.toml` on Linux).

- Every setting is optional. `config.toml.example` in the repository lists them all, commented.
- Environment variables override the file: `LOCALRESEARCH_<SECTION>__<KEY>` (nested sections
  add another `__`), e.g. `LOCALRESEARCH_SERVER__PORT=8123`,
  `LOCALRESEARCH_MEMORY__EMBEDDINGS__PROVIDER=ollama`. Lists take JSON or comma-separated values.
- `research config check` validates the file and the environment; a bad setting is reported with
  its source (the file, the line and the key, or the environment variable) and what was expected.
  The file's own values are checked even where a variable overrides them. `research daemon start`
  checks the same, and so refuses nothing `config check` passes (a non-loopback `server.bind`
  without `server.allow_remote`, a `memory.workspace` that is a file).
- `research config set KEY VALUE` edits the file in place, keeping your comments and order.
- Secrets are never stored in the file: settings ending in `_env` name the environment variable
  that holds the key. Their value must be a variable's name (`[A-Za-z_][A-Za-z0-9_]*`): a value
  that is not, or that looks like a key (`sk-…`, `Bearer …`, a long random token), is refused by
  `config set`, `config check`, `PUT /config` and `daemon start`, without repeating it (`config
  show` and `config get` hide one already in the file); put the key in the variable
  (`export MY_API_KEY=…`) and its name in the setting.

## Settings

"""


def configuration_md() -> str:
    lines = [CONFIG_INTRO.rstrip("\n"), ""]
    section = None
    for key, default, type_name, doc in describe():
        sec = key.rpartition(".")[0]
        if sec != section:
            lines += [
                "",
                f"### `[{sec}]`",
                "",
                "| setting | type | default | meaning |",
                "|---|---|---|---|",
            ]
            section = sec
        shown = (
            repr(default).replace("'", '"')
            if not isinstance(default, bool)
            else str(default).lower()
        )
        lines.append(f"| `{key}` | {type_name} | `{shown}` | {doc} |")
    return "\n".join(lines) + "\n"


def cli_md() -> str:
    import click

    from localresearch.cli.main import COMMANDS, cli

    out = ["# CLI reference", "", "Generated from `--help` by `scripts/gen_docs.py`.", ""]

    # Contexts as the CLI makes them: the root's settings (`-h, --help`, the width) are
    # inherited by every subcommand's context, as on the command line.
    def walk(cmd: click.Command, path: list[str], parent: click.Context) -> None:
        ctx = click.Context(cmd, parent=parent, info_name=path[-1], terminal_width=100)
        if getattr(cmd, "hidden", False):
            return
        out.extend([f"## `{' '.join(path)}`", "", "```", cmd.get_help(ctx), "```", ""])
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, [*path, name], ctx)

    root_ctx = click.Context(cli, info_name="research", terminal_width=100, **cli.context_settings)
    out.extend(["## `research`", "", "```", cli.get_help(root_ctx), "```", ""])
    for name in sorted(COMMANDS):
        command = cli.get_command(root_ctx, name)
        if command is not None:
            walk(command, ["research", name], root_ctx)
    return "\n".join(out)


def _literal(text: str) -> str:
    """A string literal as ruff format writes it (double quotes unless that adds escapes)."""
    if '"' in text and "'" not in text:
        return repr(text)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


# Formatter widths rendered ahead: an 80-column terminal or a pipe (78), and >= 100 columns (98).
HELP_WIDTHS = (78, 98)


def help_text_py() -> str:
    """localresearch/cli/help_text.py: `research --help` as click prints it, per width (in a
    fresh process: click caches a command's help option on first use)."""
    import os
    import subprocess

    code = "from localresearch.cli.root import cli; cli.main(['--help'], prog_name='research')"
    lines = [
        "# ruff: noqa: E501",
        '"""`research --help` rendered ahead by scripts/gen_docs.py (do not edit): printed without',
        "importing click when the terminal's width matches (cli/main.py); a test compares it with",
        'click\'s own output."""',
        "",
        "ROOT_HELP: dict[int, str] = {",
    ]
    for width in HELP_WIDTHS:
        env = dict(os.environ, COLUMNS=str(width + 2), PYTHONPATH=str(ROOT))
        text = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout
        lines.append(f"    {width}: (")
        lines.extend(f"        {_literal(line)}" for line in text.splitlines(keepends=True))
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def routes_py() -> str:
    """localresearch/server/route_list.py: every route, registered before its module loads."""
    from localresearch.server.app import route_tables

    lines = [
        "# ruff: noqa: E501",
        '"""Every route the daemon serves, in order: generated by scripts/gen_docs.py from the',
        "route modules (do not edit). make_app registers these at once and imports the modules in",
        'the background, after the socket is bound; a test checks the list is current."""',
        "",
        "# fmt: off",
        "ROUTES: tuple[tuple[str, str, str], ...] = (",
    ]
    for table in route_tables():
        for route in table:
            handler = route.handler  # type: ignore[union-attr]
            target = f"{handler.__module__}:{handler.__name__}"
            lines.append(f"    ({route.method!r}, {route.path!r}, {target!r}),")  # type: ignore[union-attr]
    lines += [")", "# fmt: on"]
    return "\n".join(lines).replace("'", '"') + "\n"


def main() -> None:
    (ROOT / "config.toml.example").write_text(example_toml(), encoding="utf-8")
    (ROOT / "docs" / "configuration.md").write_text(configuration_md(), encoding="utf-8")
    (ROOT / "docs" / "cli.md").write_text(cli_md(), encoding="utf-8")
    (ROOT / "localresearch" / "cli" / "help_text.py").write_text(help_text_py(), encoding="utf-8")
    (ROOT / "localresearch" / "server" / "route_list.py").write_text(routes_py(), encoding="utf-8")
    print("wrote config.toml.example, docs/*.md, cli/help_text.py, server/route_list.py")


if __name__ == "__main__":
    main()
