"""`research daemon ...`: lifecycle of the background server."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from localresearch.cli.common import console, err_console, fail, json_option, print_json

if TYPE_CHECKING:
    from localresearch.daemon.process import StartResult
    from localresearch.paths import Paths


def _load(*, check: bool = False) -> tuple[Any, Any]:
    """Config and paths. Starting needs a valid config; stop/status/logs must work even when the
    user has since broken it (defaults are used, with a warning)."""
    from localresearch.config import Config, ConfigError, load_config
    from localresearch.config.loader import load_checked_config
    from localresearch.paths import resolve_paths

    paths = resolve_paths()
    try:
        if check:
            return load_checked_config(paths.config_file), paths
        return load_config(paths.config_file), paths
    except ConfigError as exc:
        if check:
            fail(f"bad configuration: {exc}\nRun `research config check` for details.", code=2)
        err_console().print(f"warning: bad configuration ({exc}); using defaults", markup=False)
        return Config(), paths


def _start(paths: Paths, port: int | None) -> StartResult:
    """Start the daemon; the config is loaded and checked while the child imports the server."""
    from localresearch.daemon.process import DaemonError, start_daemon

    try:
        return start_daemon(paths, lambda: _load(check=True)[0], port=port)
    except DaemonError as exc:
        fail(str(exc))


@click.group()
def daemon() -> None:
    """Start, stop and inspect the background daemon.

    Example: research daemon start && research daemon status
    """


@daemon.command()
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: config).")
@click.option("--foreground", is_flag=True, help="Run in this terminal, logging to stderr.")
@json_option
def start(port: int | None, foreground: bool, as_json: bool) -> None:
    """Start the daemon (detached) and wait until it answers.

    Example: research daemon start --port 8123
    """
    if foreground:
        config, paths = _load(check=True)
        _serve(config, paths, port or config.server.port, foreground=True)
        return
    from localresearch.paths import resolve_paths

    paths = resolve_paths()
    result = _start(paths, port)
    if as_json:
        print_json(
            {
                "pid": result.pid,
                "url": result.url,
                "already_running": result.already_running,
                "seconds": round(result.seconds, 3),
            }
        )
    elif result.already_running:
        click.echo(f"Already running: pid {result.pid} at {result.url}")
    else:  # plain click.echo: rich's import would add ~0.1 s to every start
        where = f"at {result.url}" if result.url else "without HTTP (server.enabled = false)"
        click.echo(
            f"Started: pid {result.pid} {where} ({result.seconds:.2f}s). Logs: {paths.log_file}"
        )


@daemon.command()
@json_option
def stop(as_json: bool) -> None:
    """Stop the daemon gracefully (SIGKILL after server.shutdown_timeout).

    Example: research daemon stop
    """
    config, paths = _load()
    from localresearch.daemon.process import stop_daemon

    info = stop_daemon(paths, timeout=config.server.shutdown_timeout)
    if as_json:
        print_json({"stopped": info is not None, "pid": info and info["pid"]})
    elif info is None:
        console().print("Not running.")
    else:
        how = " (killed after timeout)" if info.get("killed") else ""
        console().print(f"Stopped pid {info['pid']}{how}.")


@daemon.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port to listen on (default: the --port the daemon was started with, else config).",
)
def restart(port: int | None) -> None:
    """Stop the daemon if it runs, then start it again.

    Without --port it starts on the port given to `start --port N`, if there was one, else on
    server.port (so a changed port applies).

    Example: research daemon restart
    """
    config, paths = _load(check=True)
    from localresearch.daemon.process import restart_port, stop_daemon

    stopped = stop_daemon(paths, timeout=config.server.shutdown_timeout)
    result = _start(paths, port or restart_port(paths, stopped))
    click.echo(f"Restarted: pid {result.pid} at {result.url} ({result.seconds:.2f}s)")


def _print_status(as_json: bool) -> None:
    _config, paths = _load()
    from localresearch.daemon.process import daemon_status

    status = daemon_status(paths)
    if as_json:
        print_json(status)
    elif not status["running"]:
        console().print("Not running. Start it with: research daemon start")
    else:
        uptime = status.get("uptime_seconds")
        console().print(f"Running: pid {status['pid']} at {status['url'] or '(no HTTP)'}")
        console().print(f"  version  {status.get('version')}")
        console().print(f"  uptime   {_duration(uptime) if uptime is not None else 'unknown'}")
        if status.get("model"):
            console().print(f"  model    {status['model']}")
        memory = status.get("memory")
        if memory:
            files, chunks = memory.get("files_indexed"), memory.get("chunks")
            console().print(f"  memory   {files} files, {chunks} chunks")
        if status.get("http") is False:
            console().print("  HTTP API off (server.enabled = false)")
        elif not status.get("responding"):
            console().print("  [yellow]the process runs but does not answer HTTP[/]")
    sys.exit(0 if status["running"] else 3)


@daemon.command()
@json_option
def status(as_json: bool) -> None:
    """Is the daemon running: pid, URL, version, uptime. Exit status 3 when it is not.

    Example: research daemon status --json
    """
    _print_status(as_json)


@click.command("status")
@json_option
def status_command(as_json: bool) -> None:
    """Same as `research daemon status`.

    Example: research status --json
    """
    _print_status(as_json)


@daemon.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines to show.")
def logs(follow: bool, lines: int) -> None:
    """Show the daemon's log.

    Example: research daemon logs -f -n 100
    """
    _config, paths = _load()
    from localresearch.daemon.logs import follow as follow_log
    from localresearch.daemon.logs import tail

    if not paths.log_file.exists():
        err_console().print(f"No log yet at {paths.log_file}")
        if not follow:
            return
    for line in tail(paths.log_file, lines):
        click.echo(line)
    if follow:
        try:
            for line in follow_log(paths.log_file):
                click.echo(line)
        except KeyboardInterrupt:
            pass


def _serve(config: Any, paths: Any, port: int, *, foreground: bool) -> None:
    from localresearch.daemon.serve import ServeError, serve_forever

    try:
        serve_forever(config, paths, port, foreground=foreground)
    except ServeError as exc:
        fail(str(exc))


def _duration(seconds: int) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    if minutes or hours or days:
        parts.append(f"{minutes}m")
    parts.append(f"{sec}s")
    return " ".join(parts)
