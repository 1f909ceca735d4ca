"""GET /api/ws: chat over a WebSocket. Send {"type": "chat", "message", "session_id"?,
"model"?, "include_memory"?}, receive the same events as SSE; {"type": "cancel"} stops the
current answer only, and the socket stays open for the next question."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from localresearch.api.base import convert
from localresearch.api.chat import ChatRequest
from localresearch.errors import InvalidRequest, LocalResearchError
from localresearch.events import Event
from localresearch.server.keys import WEBSOCKETS
from localresearch.server.requests import parse_json_object
from localresearch.server.routes.chat import chat_service

if TYPE_CHECKING:
    from localresearch.chat.service import ChatService

routes = web.RouteTableDef()


async def _send(ws: web.WebSocketResponse, event: Event) -> None:
    if not ws.closed:
        await ws.send_str(event.to_json())


def _error(code: str, message: str) -> Event:
    return Event("error", {"code": code, "message": message})


async def _answer(ws: web.WebSocketResponse, service: ChatService, data: dict[str, Any]) -> None:
    try:
        try:
            body = convert(data, ChatRequest)
            turn = await service.prepare(body.message, **body.options())
        except LocalResearchError as exc:
            await _send(ws, _error(exc.code, exc.message))
            return
        async with contextlib.aclosing(service.run(turn)) as events:
            async for event in events:
                await _send(ws, event)
    except ConnectionError:
        pass


@routes.get("/api/ws")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    service = chat_service(request)
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=1_048_576)
    await ws.prepare(request)
    request.app[WEBSOCKETS].add(ws)
    current: asyncio.Task[None] | None = None
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.BINARY:
                    await _send(ws, _error("invalid_request", "Send JSON text messages"))
                continue
            try:
                data = parse_json_object(msg.data)
            except InvalidRequest as exc:
                await _send(ws, _error("invalid_request", exc.message))
                continue
            kind = data.get("type")
            if kind == "chat":
                if current is not None and not current.done():
                    await _send(
                        ws, _error("conflict", "An answer is in progress; cancel it or wait")
                    )
                    continue
                current = asyncio.create_task(_answer(ws, service, data))
            elif kind == "cancel":
                if current is not None and not current.done():
                    current.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await current
                    # Said here, not in the task: a task cancelled before its first step
                    # never runs its handlers, and the client would wait forever.
                    if current.cancelled():
                        await _send(ws, _error("cancelled", "Answer cancelled"))
            elif kind == "ping":
                await _send(ws, Event("pong"))
            else:
                await _send(
                    ws,
                    _error("invalid_request", 'Message type must be "chat", "cancel" or "ping"'),
                )
    finally:
        if current is not None and not current.done():
            current.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await current
        request.app[WEBSOCKETS].discard(ws)
    return ws
