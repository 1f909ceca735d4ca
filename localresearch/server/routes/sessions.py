"""Sessions: create, list, read (with messages) and delete multi-turn conversations."""

from __future__ import annotations

from aiohttp import web

from localresearch.api.chat import (
    CreateSession,
    Page,
    Session,
    SessionDeleted,
    SessionList,
    SessionWithMessages,
)
from localresearch.server.requests import body_model, model_response, query_model
from localresearch.server.routes.chat import chat_service

routes = web.RouteTableDef()


@routes.post("/api/sessions")
async def create_session(request: web.Request) -> web.Response:
    body = await body_model(request, CreateSession, required=False)
    session = await chat_service(request).sessions.create(body.title or "")
    return model_response(Session.of(session), status=201)


@routes.get("/api/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    page = query_model(request, Page)
    sessions, total = await chat_service(request).sessions.list_page(page.limit, page.offset)
    return model_response(SessionList(sessions=[Session.of(s) for s in sessions], total=total))


@routes.get("/api/sessions/{id}")
async def get_session(request: web.Request) -> web.Response:
    session = await chat_service(request).sessions.get(request.match_info["id"])
    return model_response(SessionWithMessages.of(session))


@routes.delete("/api/sessions/{id}")
async def delete_session(request: web.Request) -> web.Response:
    session_id = request.match_info["id"]
    await chat_service(request).sessions.delete(session_id)
    return model_response(SessionDeleted(id=session_id, deleted=True))
