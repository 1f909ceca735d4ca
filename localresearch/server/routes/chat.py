"""Chat: one answer as JSON (POST /api/chat) or as Server-Sent Events (POST /api/chat/stream)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

from localresearch.api.chat import AnswerEvidence, AnswerSentence, ChatRequest, ChatResponse
from localresearch.errors import Unavailable
from localresearch.server.keys import RUNTIME
from localresearch.server.requests import body_model, model_response
from localresearch.server.sse import KEEPALIVE_SECONDS, Prefetch, open_stream, write_stream

if TYPE_CHECKING:
    from localresearch.chat.service import ChatService

routes = web.RouteTableDef()

FIRST_WRITE_WAIT_SECONDS = 0.05  # for providers that do not say when their request has left
STREAM_KEEPALIVE = KEEPALIVE_SECONDS  # a comment line this often while the model is silent


def chat_service(request: web.Request) -> ChatService:
    chat = request.app[RUNTIME].chat
    if chat is None:
        raise Unavailable("The chat service is not running")
    return chat


def chat_response(done: dict[str, Any]) -> ChatResponse:
    """The spec's fields in the spec's order, then our additions (citations, session_id, ...)."""
    return ChatResponse(
        response=done.get("response") or "",
        model=done.get("model") or "",
        tokens=done.get("tokens"),
        tools_used=done.get("tools_used"),
        citations=done.get("citations"),
        session_id=done.get("session_id"),
        sentences=[AnswerSentence(**s) for s in done.get("sentences") or ()],
        evidence=AnswerEvidence(**done["evidence"]) if done.get("evidence") else None,
    )


@routes.post("/api/chat")
async def chat(request: web.Request) -> web.Response:
    body = await body_model(request, ChatRequest)
    service = chat_service(request)
    gone = web.Response(status=499, reason="Client Closed Request")
    done = await _cancel_on_disconnect(
        request, service.answer(body.message, **body.options()), fallback=None
    )
    if done is None:
        return gone
    return model_response(chat_response(done))


@routes.post("/api/chat/stream")
async def chat_stream(request: web.Request) -> web.StreamResponse:
    body = await body_model(request, ChatRequest)
    service = chat_service(request)
    turn = await service.prepare(body.message, **body.options())
    # Start answering now: the model's time to first token overlaps sending the headers. They
    # wait until the model request has left (at most FIRST_WRITE_WAIT_SECONDS): a write to our
    # client first would wake it and delay the model's start by as much (0.4 ms here).
    events = Prefetch(service.run(turn))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FIRST_WRITE_WAIT_SECONDS):
            await turn.sent.wait()
    response = await open_stream(request)
    result: web.StreamResponse = await _cancel_on_disconnect(
        request, write_stream(response, events, keepalive=STREAM_KEEPALIVE), fallback=response
    )
    return result


async def _cancel_on_disconnect(request: web.Request, work: Any, *, fallback: Any) -> Any:
    """Run `work`. The server runs with aiohttp's handler_cancellation, so a client that goes
    away (e.g. while a slow model thinks) cancels this handler and with it the upstream model
    request; a write that finds the client gone returns `fallback` (nobody reads it)."""
    try:
        return await work
    except ConnectionError:
        return fallback
