"""The aiohttp application: middlewares, typed state, routes and the runtime's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING

from aiohttp import web

from localresearch.access.keys import KeyStore
from localresearch.errors import Unavailable
from localresearch.paths import Paths
from localresearch.runtime import Runtime
from localresearch.server import parser_errors
from localresearch.server.access import ACCESS, Access, add_rate_headers
from localresearch.server.errors import Handler, error_middleware, mark_started
from localresearch.server.keys import BODY_TIMEOUT, MAX_BODY, RUNTIME, SHUTDOWN, WEBSOCKETS
from localresearch.server.observe import observe_response, reconfigure_access
from localresearch.server.query_errors import with_detail
from localresearch.server.route_list import ROUTES
from localresearch.server.security import GUARD, Guard, refusal
from localresearch.server.spec_envelope import spec_envelope
from localresearch.server.websession import WEB_SESSIONS, WebSessions, cookie_resolver

if TYPE_CHECKING:
    from localresearch.config import Config

log = logging.getLogger("localresearch.daemon")


# Routes that answer while the core is still starting (everything else waits for it).
_NO_WAIT = frozenset(
    {
        "/health",
        "/api/status",
        "/openapi.json",
        "/docs",
        "/",
        "/static/{name}",
        "/static/{version}/{name}",
        "/web/signin",
    }
)


def route_tables() -> list[web.RouteTableDef]:
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
    from localresearch.server.routes import docs, keys

    tables.extend([docs.routes, keys.routes])
    from localresearch.server.routes import web as web_page

    tables.append(web_page.routes)
    from localresearch.server.routes import query, settings

    tables.extend([query.routes, settings.routes])
    from localresearch.server.routes import research_sessions

    tables.append(research_sessions.routes)
    return tables


class Routes:
    """The route modules, imported in the background once the socket is bound: /health
    answers meanwhile, every other request waits for them (and, but for _NO_WAIT, for the
    core). The routes themselves are registered at once from ROUTES (route_list.py)."""

    def __init__(self) -> None:
        self.loaded = asyncio.Event()
        self.failure: BaseException | None = None
        self.registered: list[tuple[web.AbstractRoute, str, str]] = []  # route, method, path
        self.handlers: dict[str, Handler] = {}

    def until_loaded(self, request: web.Request) -> Awaitable[None] | None:
        """None once loaded (or for /health), else what the request awaits first."""
        if self.loaded.is_set() and self.failure is None:
            return None
        if request.match_info.route in request.app[ACCESS].public_routes:
            return None
        return self.wait()

    async def wait(self) -> None:
        await self.loaded.wait()
        if self.failure is not None:
            raise Unavailable(
                f"the daemon's routes failed to load ({self.failure!r}); see `research daemon logs`"
            )

    def handler(self, target: str) -> Handler:
        """The handler `module:name`, imported on its first call (after `load`)."""

        async def lazy(request: web.Request) -> web.StreamResponse:
            found = self.handlers.get(target)
            if found is None:
                module, _, name = target.partition(":")
                found = self.handlers[target] = getattr(importlib.import_module(module), name)
            return await found(request)

        lazy.__name__ = target.rpartition(":")[2]
        return lazy

    async def load(self, access: Access) -> None:
        """Import every route module (a thread: /health keeps answering), then give each
        route its operation (permission, rate class, envelope)."""
        try:
            await asyncio.to_thread(route_tables)
            from localresearch.api.operations import by_key

            operations = by_key()
            for route, method, path in self.registered:
                operation = operations.get((method, path))
                if operation is not None:
                    access.policies[route] = operation
        except BaseException as exc:
            self.failure = exc
            raise
        finally:
            self.loaded.set()


ROUTES_KEY = web.AppKey("routes", Routes)
# Set by the daemon (server/run.py) once it listens and has reported ready: the routes and the
# core load only then, so that start-up's first /health does not compete with their imports.
# Without it (tests' aiohttp_client) they load at once.
LISTENING = web.AppKey("listening", asyncio.Event)


async def _health(request: web.Request) -> web.Response:
    """GET /health: the server is up (answered before anything else is imported)."""
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def _runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the routes, then start the core, in the background: the server binds and answers
    /health meanwhile, and every other route waits (see Routes and _after_start)."""
    runtime = app[RUNTIME]
    listening = app.get(LISTENING)
    starting = asyncio.create_task(_start(app[ROUTES_KEY], app[ACCESS], runtime, listening))
    yield
    if listening is not None and not listening.is_set():
        starting.cancel()  # it never began: the server did not get to listen
        with contextlib.suppress(asyncio.CancelledError):
            await starting
    else:
        # Let a start in progress finish (its database work runs in threads that a cancel
        # would not stop).
        await starting
    await runtime.stop()


async def _start(
    routes: Routes, access: Access, runtime: Runtime, listening: asyncio.Event | None
) -> None:
    if listening is not None:
        await listening.wait()
    try:
        await routes.load(access)
    except Exception:
        log.exception("the daemon's routes failed to load")
    try:
        await runtime.start()
    except Exception:
        log.exception("the daemon's services failed to start")


def _after_start(handler: Handler) -> Handler:
    """The handler, run once the core has started (at once after that)."""

    @functools.wraps(handler)
    async def after_start(request: web.Request) -> web.StreamResponse:
        runtime = request.app[RUNTIME]
        if not runtime.started:
            await runtime.wait_started()
        return await handler(request)

    return after_start


async def _on_shutdown(app: web.Application) -> None:
    """Tell open streams to finish and close WebSockets cleanly before the runner stops."""
    app[SHUTDOWN].set()
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[WEBSOCKETS]
    for ws in list(sockets):
        await ws.close(code=1001, message=b"daemon shutting down")


def make_app(config: Config, paths: Paths, *, port: int | None = None) -> web.Application:
    """Build the application; tests call this with a temp-dir Paths and use aiohttp_client."""
    parser_errors.install()
    routes = Routes()
    app = web.Application(
        middlewares=[spec_envelope, error_middleware(refusal, routes.until_loaded, with_detail)],
        client_max_size=config.server.max_body_bytes,
    )
    app[ROUTES_KEY] = routes
    app[MAX_BODY] = config.server.max_body_bytes
    app[BODY_TIMEOUT] = config.server.body_timeout
    app[RUNTIME] = Runtime(config, paths)
    app[GUARD] = Guard(config.server, config.api, port or config.server.port)
    access = app[ACCESS] = Access(config, paths, KeyStore(app[RUNTIME].db, paths.database))
    app[SHUTDOWN] = asyncio.Event()
    app[WEBSOCKETS] = weakref.WeakSet()
    app[WEB_SESSIONS] = WebSessions(paths.state_dir / "web_session.key", port or config.server.port)
    access.resolvers.append(cookie_resolver(access.owner))
    for method, path, target in ROUTES:
        if (method, path) == ("GET", "/health"):
            access.public_routes.add(app.router.add_route(method, path, _health))
            continue
        handler = routes.handler(target)
        if path not in _NO_WAIT:
            handler = _after_start(handler)
        routes.registered.append((app.router.add_route(method, path, handler), method, path))
    if access.limiter is not None:
        app.on_response_prepare.append(add_rate_headers)
    app.on_response_prepare.append(observe_response)
    app[RUNTIME].config_listeners.append(functools.partial(reconfigure_access, app))
    app.cleanup_ctx.append(_runtime_ctx)
    app.on_shutdown.append(_on_shutdown)
    app.on_response_prepare.append(_started)
    return app


async def _started(request: web.Request, response: web.StreamResponse) -> None:
    mark_started(request, response)
