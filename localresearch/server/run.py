"""Serve the app until SIGTERM/SIGINT, then shut down gracefully."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from localresearch import __version__
from localresearch.daemon import memdebug, native_memory
from localresearch.daemon.locate import url_for
from localresearch.daemon.pidfile import remove_pid_file, write_pid_file
from localresearch.loopback import is_loopback_host
from localresearch.paths import Paths
from localresearch.server.app import LISTENING, make_app

if TYPE_CHECKING:
    from localresearch.config import Config

log = logging.getLogger("localresearch.daemon")


async def serve(
    config: Config, paths: Paths, *, port: int, on_ready: Callable[[], None] | None = None
) -> None:
    """Bind, write the pid file, serve until a signal, then close streams and services cleanly.

    The core's services start in the background once the socket is bound (see make_app)."""
    bind = config.server.bind
    if not is_loopback_host(bind):
        log.warning(
            "binding %s: the API is reachable from the network (server.allow_remote = true)", bind
        )
    app = make_app(config, paths, port=port)
    listening = app[LISTENING] = asyncio.Event()
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=max(1.0, config.server.shutdown_timeout - 1.0),
        # Slow clients: a connection without a complete request (slowloris headers, or idle
        # between keep-alive requests) is closed after idle_timeout; bodies get body_timeout.
        keepalive_timeout=config.server.idle_timeout,
        max_line_size=8190,  # a longer URL is a 414 in the envelope (parser_errors)
        max_field_size=8190,
        max_headers=100,
        handler_cancellation=True,  # a client that hangs up cancels its handler at once
        # The access log costs ~10% of a tiny request; it is on only at log_level = "debug".
        access_log=logging.getLogger("aiohttp.access")
        if config.server.log_level == "debug"
        else None,
    )
    await runner.setup()
    try:
        url = ""
        if config.server.enabled:
            site = web.TCPSite(runner, bind, port, reuse_address=True)
            await site.start()
            url = url_for(bind, port)
            kind = type(asyncio.get_running_loop()).__module__.split(".")[0]
            log.info("localresearch %s listening on %s (%s loop)", __version__, url, kind)
        else:
            log.info("localresearch %s running without HTTP (server.enabled = false)", __version__)
        # A thread (psutil's import is most of it): /health answers meanwhile.
        await asyncio.to_thread(
            write_pid_file, paths.pid_file, url=url, port=port, version=__version__
        )
        if on_ready is not None:
            on_ready()
        listening.set()  # the routes and the core load now (make_app), off /health's way
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        memdebug.install(loop, paths.state_dir)
        trimmer = asyncio.create_task(native_memory.trim_every(native_memory.trim_interval()))
        await stop.wait()
        trimmer.cancel()
        log.info("shutting down")
    finally:
        await runner.cleanup()
        remove_pid_file(paths.pid_file, only_pid=os.getpid())
        log.info("stopped")
