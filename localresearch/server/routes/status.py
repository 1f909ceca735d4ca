"""Health and status: is the daemon up, and what is it running."""

from __future__ import annotations

from aiohttp import web

from localresearch.api.base import encode
from localresearch.api.status import Health, Status
from localresearch.server.keys import RUNTIME
from localresearch.server.requests import model_response

routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.Response(body=_HEALTHY, content_type="application/json")


@routes.get("/api/status")
async def status(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return model_response(Status.of(await runtime.status()))


_HEALTHY = encode(Health(status="ok"))
