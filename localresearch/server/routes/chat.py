"""Chat: one answer as JSON (POST /api/chat) or as Server-Sent Events (POST /api/chat/stream)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

from localresearch.errors import Unavailable
from localresearch.server.keys import RUNTIME
from localresearch.server.requests import field, json_body
from localresearch.server.sse import KEEPALIVE_SECONDS, Prefetch, open_stream, write_stream

if TYPE_CHECKING:
    from localresearch.chat.service import ChatService

routes = web.RouteTableDef()

DISCONNECT_POLL_SECONDS = 0.1
FIRST_WRITE_WAIT_SECONDS = 0.05  # for providers that do not say when their request has left
STREAM_KEEPALIVE = KEEPALIVE_SECONDS  # a comment line this often while the model is silent


def chat_service(request: web.Request) -> ChatService:
    chat = request.app[RUNTIME].chat
    if chat is None:
        raise Unavailable("The chat service is not running")
    return chat


def chat_options(body: dict[str, Any]) -> dict[str, Any]:
    """The optional parameters every chat entry point shares, type-checked."""
    return {
        "session_id": field(body, "session_id", str),
        "model": field(body, "model", str) or None,
        "include_memory": field(body, "include_memory", bool, default=True),
    }


def _spec_response(done: dict[str, Any]) -> dict[str, Any]:
    """The spec's fields in the spec's order, then our additions (citations, session_id,
    sentences)."""
    keys = ("response", "model", "tokens", "tools_used", "citations", "session_id", "sentences")
    return {key: done.get(key) for key in keys}


@routes.post("/api/chat")
async def chat(request: web.Request) -> web.Response:
    body = await json_body(request)
    message = field(body, "message", str, required=True)
    service = chat_service(request)
    gone = web.Response(status=499, reason="Client Closed Request")
    done = await _cancel_on_disconnect(
        request, service.answer(message, **chat_options(body)), fallback=None
    )
    if done is None:
        return gone
    return web.json_response(_spec_response(done))


@routes.post("/api/chat/stream")
async def chat_stream(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    message = field(body, "message", str, required=True)
    service = chat_service(request)
    turn = await service.prepare(message, **chat_options(body))
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
    """Run `work`, cancelling it (and so the upstream model request) if the client goes away
    while we wait, e.g. for a slow first token; then `fallback` is returned (nobody reads it)."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
            if done:
                try:
                    return task.result()
                except ConnectionError:  # a write found the client gone
                    return fallback
            transport = request.transport
            if transport is None or transport.is_closing():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await task
                return fallback
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
