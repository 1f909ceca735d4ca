"""Run the server in this process until a signal: the body of the daemon process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from localresearch.daemon.lock import HomeLock
from localresearch.daemon.logs import setup_logging
from localresearch.daemon.pidfile import running_daemon
from localresearch.paths import Paths

if TYPE_CHECKING:
    from localresearch.config import Config


_HELD: list[HomeLock] = []


class ServeError(Exception):
    """The server could not run; the message says why."""


def preload() -> None:
    """Import what serving needs before it binds (aiohttp, the app, its middlewares) while the
    parent checks the config; the route modules load after the bind (server/app.py), psutil
    as the pid file is written (server/run.py)."""
    from localresearch.server.run import serve  # noqa: F401

    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401


def serve_forever(
    config: Config,
    paths: Paths,
    port: int,
    *,
    foreground: bool,
    on_ready: Callable[[], None] | None = None,
    locked: bool = False,
) -> None:
    """Log to stderr (foreground) or the rotating file, serve, and return after shutdown;
    `on_ready` runs once the server listens and the pid file is written. Unless the caller
    already holds the home's lock (`locked`), it is taken here, before binding, and held until
    the process exits."""
    from localresearch.daemon.process import DaemonError, check_bind, port_in_use

    paths.ensure()
    server = config.server
    setup_logging(
        server.log_level,
        log_file=None if foreground else paths.log_file,
        max_bytes=server.log_max_bytes,
        backups=server.log_backups,
    )
    log = logging.getLogger("localresearch.daemon")
    if not locked:
        lock = HomeLock(paths.lock_file)
        if not lock.try_acquire():
            raise ServeError(
                f"another daemon runs in this home (it holds {paths.lock_file}); "
                "stop it with `research daemon stop`"
            )
        _HELD.append(lock)  # held for the life of the process
    running = running_daemon(paths.pid_file)
    if running is not None:
        raise ServeError(f"already running: pid {running['pid']} at {running['url']}")
    try:
        check_bind(config)
    except DaemonError as exc:
        raise ServeError(str(exc)) from None
    if server.enabled and port_in_use(server.bind, port):
        raise ServeError(f"port {port} on {server.bind} is already in use; choose another")
    from localresearch.workspace import WorkspaceError, prepare_workspace_dir, workspace_dir

    try:
        prepare_workspace_dir(workspace_dir(config, paths))
    except WorkspaceError as exc:
        log.error("%s", exc)
        raise ServeError(str(exc)) from None
    from localresearch.daemon.native_memory import ARENAS, limit_arenas
    from localresearch.server.run import serve

    limit_arenas(ARENAS)  # before the server's threads start
    try:
        with asyncio.Runner(loop_factory=event_loop_factory(config)) as runner:
            runner.run(serve(config, paths, port=port, on_ready=on_ready))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        log.error("cannot serve on %s:%s: %s", server.bind, port, exc)
        raise ServeError(f"cannot serve on {server.bind}:{port}: {exc}") from None


def event_loop_factory(config: Config) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop (libuv, in C) unless turned off or not installed (Windows): it accepts a
    connection and wakes on I/O in fewer, cheaper steps than asyncio's loop in Python (a chat's
    added time to first token 0.2-0.4 ms lower, docs/benchmarks.md)."""
    if not config.server.uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
