"""`research config ...`: where the file is, what is in effect, and safe edits."""

from __future__ import annotations

from typing import Any

import click

from localresearch.cli.common import console, fail, json_option, print_json


@click.group()
def config() -> None:
    """Show, check and edit config.toml (comments and order are kept).

    Example: research config set server.port 8123
    """


@config.command()
def path() -> None:
    """Print the config file's path.

    Example: research config path
    """
    from localresearch.paths import resolve_paths

    click.echo(str(resolve_paths().config_file))


def _daemon() -> Any:
    """The running daemon's client, or None (then the file is read and written directly)."""
    from localresearch.client import Client
    from localresearch.config import ConfigError

    try:
        client = Client.from_environment(timeout=10.0)
    except ConfigError:
        return None
    return client if client.health() else None


def _from_daemon() -> dict[str, Any] | None:
    """The running daemon's effective configuration (GET /config), or None."""
    from localresearch.client import ClientError

    client = _daemon()
    if client is None:
        return None
    try:
        data: dict[str, Any] = client.config_get()
    except ClientError:
        return None
    for name in ("reasoning_mode", "loops", "llm_backend"):  # the query API's own names
        data.pop(name, None)
    return data


def _effective() -> object:
    from localresearch.config import ConfigError, load_config
    from localresearch.paths import resolve_paths

    try:
        return load_config(resolve_paths().config_file)
    except ConfigError as exc:
        fail(str(exc), code=2)


@config.command()
@json_option
def show(as_json: bool) -> None:
    """Print the effective configuration (defaults + file + environment).

    Example: research config show --json
    """
    from localresearch.config.loader import redacted_dict

    data = _from_daemon() or redacted_dict(_effective())
    if as_json:
        print_json(data)
        return
    import tomlkit

    click.echo(tomlkit.dumps(data).rstrip())


@config.command()
@click.argument("key")
@json_option
def get(key: str, as_json: bool) -> None:
    """Print one setting, by dotted name.

    Example: research config get server.port
    """
    from localresearch.config import ConfigError
    from localresearch.config.loader import get_value, redact, redacted_dict

    running = _from_daemon()
    try:
        value = get_value(_effective(), key)  # type: ignore[arg-type]
        if running is not None:  # what the daemon uses now (its environment may differ)
            node: Any = running
            for part in key.split("."):
                node = node[part]
            value = node
        elif key == "api":
            value = redacted_dict(_effective())["api"]
        value = redact(key, value)
    except ConfigError as exc:
        fail(exc.message, code=2)
    if as_json or not isinstance(value, (str, int, float, bool)):
        print_json(value)
    else:
        click.echo(str(value).lower() if isinstance(value, bool) else str(value))


# A VALUE that looks like an option (-1, -0.5) is a value: negative numbers need no `--`.
@config.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
def set_(key: str, value: str) -> None:
    """Set one setting in config.toml, keeping comments and order.

    Lists take JSON or comma-separated values.

    Example: research config set memory.paths ~/notes,~/papers
    """
    from localresearch.config import ConfigError
    from localresearch.config.loader import set_value
    from localresearch.paths import resolve_paths

    config_file = resolve_paths().config_file
    client = _daemon()
    if client is not None:
        _set_through_daemon(client, key, value, config_file)
        return
    try:
        stored = set_value(config_file, key, value)
    except ConfigError as exc:
        fail(str(exc), code=2)
    from rich.markup import escape

    console().print(escape(f"{key} = {stored!r} written to {config_file}"))
    console().print("The daemon is not running: the value applies when it starts")


def _set_through_daemon(client: Any, key: str, raw: str, config_file: object) -> None:
    """PUT /config: the daemon checks, writes (comments kept) and applies the value at once."""
    from rich.markup import escape

    from localresearch.client import APIRequestError
    from localresearch.config import ConfigError
    from localresearch.config.loader import _parse_env_value, _setting_type

    try:
        value = _parse_env_value(_setting_type(key), raw)
    except (ConfigError, ValueError) as exc:
        fail(str(exc), code=2)
    try:
        answer = client.config_update({key: value})
    except APIRequestError as exc:
        fail(exc.message, code=2)
    console().print(escape(f"{key} = {value!r} written to {config_file}"))
    if key in (answer.restart_required or []):
        console().print("Restart the daemon to apply: research daemon restart")
    elif key in (answer.overridden_by_environment or []):
        console().print("The daemon's environment overrides this setting (LOCALRESEARCH_*)")
    else:
        console().print("Applied by the running daemon")


@config.command()
@json_option
def check(as_json: bool) -> None:
    """Validate config.toml and the LOCALRESEARCH_* environment; exit 2 on a problem.

    Example: research config check
    """
    from localresearch.config import ConfigError
    from localresearch.config.loader import load_checked_config
    from localresearch.paths import resolve_paths

    config_file = resolve_paths().config_file
    try:
        load_checked_config(config_file)
    except ConfigError as exc:
        if as_json:
            print_json(
                {
                    "ok": False,
                    "file": exc.file,
                    "key": exc.key,
                    "line": exc.line,
                    "message": exc.message,
                }
            )
            raise SystemExit(2) from None
        fail(str(exc), code=2)
    if as_json:
        print_json({"ok": True, "file": str(config_file), "exists": config_file.exists()})
    else:
        state = "" if config_file.exists() else " (no file: all defaults)"
        console().print(f"OK: {config_file}{state}")
