"""Health and status: is the daemon up, and what is it running."""

from __future__ import annotations

from aiohttp import web

from localresearch.server.keys import RUNTIME

routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/api/status")
async def status(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return web.json_response(await runtime.status())
