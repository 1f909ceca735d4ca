"""Sessions: create, list, read (with messages) and delete multi-turn conversations."""

from __future__ import annotations

from aiohttp import web

from localresearch.server.requests import field, int_param, json_body
from localresearch.server.routes.chat import chat_service

routes = web.RouteTableDef()


@routes.post("/api/sessions")
async def create_session(request: web.Request) -> web.Response:
    body = await json_body(request, required=False)
    title = field(body, "title", str, default="")
    session = await chat_service(request).sessions.create(title)
    return web.json_response(session, status=201)


@routes.get("/api/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    limit = int_param(request, "limit", 50, low=1, high=1000)
    offset = int_param(request, "offset", 0, low=0, high=10_000_000)
    sessions, total = await chat_service(request).sessions.list_page(limit, offset)
    return web.json_response({"sessions": sessions, "total": total})


@routes.get("/api/sessions/{id}")
async def get_session(request: web.Request) -> web.Response:
    session = await chat_service(request).sessions.get(request.match_info["id"])
    return web.json_response(session)


@routes.delete("/api/sessions/{id}")
async def delete_session(request: web.Request) -> web.Response:
    session_id = request.match_info["id"]
    await chat_service(request).sessions.delete(session_id)
    return web.json_response({"id": session_id, "deleted": True})
