"""What every command shares: the client, JSON output, error rendering."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from localresearch.client import Client

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@functools.cache
def console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


@functools.cache
def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=_plain))


def print_json_line(obj: Any) -> None:
    """One compact object per line: a stream's output is NDJSON a script reads line by line."""
    click.echo(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_plain))


def _plain(obj: Any) -> Any:
    """The client's typed objects as their JSON (wire names), anything else as text."""
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if callable(to_dict) else str(obj)


def fail(message: str, code: int = 1) -> NoReturn:
    from rich.markup import escape

    err_console().print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)
    sys.exit(code)


def get_client(timeout: float = 30.0) -> Client:
    """The client of this installation's daemon (config errors become clear messages).

    Another program on the daemon's port is told in one line (PortHeld, exit 3) before any
    work is sent to it; nothing listening is told by the first request (DaemonNotRunning)."""
    from localresearch.client import PortHeld

    client = _client(timeout)
    if client.probe() == "other":
        message = _held_by_another(client)
        if message:
            raise PortHeld(client.base_url, message)
    return client


client_from_context = get_client


def client_starting_daemon(*, timeout: float = 30.0) -> Client:
    """This installation's client; if no daemon answers, start one (and say so on stderr).

    The daemon is recognised by its /health (waiting a few seconds at most) before any work is
    sent, on the connection the first request then reuses; another program on the port is
    reported in one line (exit 3).
    """
    client = _client(timeout)
    verdict = client.probe()
    if verdict == "daemon":
        return client
    if verdict == "other":
        message = _held_by_another(client)
        if message:
            fail(message, code=3)
        return client
    return start_daemon_client(timeout=timeout)


def _client(timeout: float) -> Client:
    from localresearch.client import Client
    from localresearch.config import ConfigError
    from localresearch.daemon.locate import api_key, daemon_url

    try:
        return Client(daemon_url(), timeout=timeout, api_key=api_key())
    except ConfigError as exc:
        fail(f"bad configuration: {exc}\nRun `research config check` for details.", code=2)


def _held_by_another(client: Client) -> str | None:
    """Why no work goes to whatever answered the probe: another program holds the port. None
    if it is this home's own daemon after all (alive in its pid file), only slow to answer."""
    from localresearch.daemon.pidfile import running_daemon
    from localresearch.daemon.process import port_in_use_message
    from localresearch.paths import resolve_paths

    running = running_daemon(resolve_paths().pid_file)
    if running is not None and running.get("url") == client.base_url:
        return None
    return port_in_use_message(client.host, client.port, by_another=True)


def start_daemon_client(*, timeout: float = 30.0) -> Client:
    """Start the daemon (saying so on stderr) and return its client."""
    from localresearch.client import Client
    from localresearch.config import ConfigError
    from localresearch.config.loader import load_checked_config
    from localresearch.daemon.locate import api_key
    from localresearch.daemon.process import DaemonError, ensure_running
    from localresearch.paths import resolve_paths

    try:
        paths = resolve_paths()
        err_console().print("Starting the localresearch daemon…", markup=False)
        url, started = ensure_running(paths, lambda: load_checked_config(paths.config_file))
        if started:
            err_console().print(f"Daemon started at {url} (stop it with: research daemon stop)")
        return Client(url, timeout=timeout, api_key=api_key())
    except ConfigError as exc:
        fail(f"bad configuration: {exc}\nRun `research config check` for details.", code=2)
    except DaemonError as exc:
        fail(f"could not start the daemon: {exc}", code=3)


@contextlib.contextmanager
def refusals_as_usage_errors() -> Iterator[None]:
    """A request the daemon refuses as invalid (a model the provider cannot serve) is a usage
    error: exit 2, like a bad option."""
    from localresearch.client import APIRequestError

    try:
        yield
    except APIRequestError as exc:
        if exc.status != 400 and exc.code != "invalid_request":
            raise  # not a refusal of the request itself: api_errors reports it (exit 1)
        fail(exc.message + (f" [{exc.code}]" if exc.code else ""), code=2)


def api_errors(fn: F) -> F:
    """Turn client errors into one clear line and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from localresearch.client import APIRequestError, DaemonNotRunning, DaemonStopped
        from localresearch.config import ConfigError

        try:
            return fn(*args, **kwargs)
        except DaemonNotRunning as exc:
            fail(str(exc), code=3)
        except DaemonStopped as exc:
            fail(str(exc), code=1)
        except APIRequestError as exc:
            fail(exc.message + (f" [{exc.code}]" if exc.code else ""))
        except ConfigError as exc:
            fail(f"bad configuration: {exc}", code=2)
        except KeyboardInterrupt:
            err_console().print("Interrupted.")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
