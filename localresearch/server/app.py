"""The aiohttp application: middlewares, typed state, routes and the runtime's lifecycle."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator

from aiohttp import web

from localresearch.config import Config
from localresearch.paths import Paths
from localresearch.runtime import Runtime
from localresearch.server.errors import error_middleware
from localresearch.server.keys import MAX_BODY, RUNTIME, SHUTDOWN, WEBSOCKETS
from localresearch.server.security import GUARD, Guard, security_middleware


def _route_modules() -> list[web.RouteTableDef]:
    """Every route table, one module per concern (routes only translate HTTP ⇄ core)."""
    from localresearch.server.routes import status

    tables = [status.routes]
    # Each concern appends its table here, e.g. `tables.append(memory.routes)`.
    from localresearch.server.routes import memory

    tables.append(memory.routes)
    from localresearch.server.routes import research

    tables.append(research.routes)
    from localresearch.server.routes import chat, models, sessions, ws

    tables.extend([chat.routes, sessions.routes, ws.routes, models.routes])
    from localresearch.server.routes import heartbeat

    tables.append(heartbeat.routes)
    return tables


async def _runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    await runtime.start()
    yield
    await runtime.stop()


async def _on_shutdown(app: web.Application) -> None:
    """Tell open streams to finish and close WebSockets cleanly before the runner stops."""
    app[SHUTDOWN].set()
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[WEBSOCKETS]
    for ws in list(sockets):
        await ws.close(code=1001, message=b"daemon shutting down")


def make_app(config: Config, paths: Paths, *, port: int | None = None) -> web.Application:
    """Build the application; tests call this with a temp-dir Paths and use aiohttp_client."""
    app = web.Application(
        middlewares=[error_middleware, security_middleware],
        client_max_size=config.server.max_body_bytes,
    )
    app[MAX_BODY] = config.server.max_body_bytes
    app[RUNTIME] = Runtime(config, paths)
    app[GUARD] = Guard(config.server, config.api, port or config.server.port)
    app[SHUTDOWN] = asyncio.Event()
    app[WEBSOCKETS] = weakref.WeakSet()
    for table in _route_modules():
        app.add_routes(table)
    app.cleanup_ctx.append(_runtime_ctx)
    app.on_shutdown.append(_on_shutdown)
    return app
