"""Chat: one answer as JSON (POST /api/chat) or as Server-Sent Events (POST /api/chat/stream)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from aiohttp import web

from localresearch.chat.service import ChatService
from localresearch.errors import Unavailable
from localresearch.events import Event
from localresearch.server.keys import RUNTIME
from localresearch.server.requests import field, json_body
from localresearch.server.sse import KEEPALIVE_SECONDS, encode, open_stream

routes = web.RouteTableDef()

DISCONNECT_POLL_SECONDS = 0.1
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
    """The spec's fields in the spec's order, then our additions (citations, session_id)."""
    keys = ("response", "model", "tokens", "tools_used", "citations", "session_id")
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
    # Start answering now: the model's time to first token overlaps sending the headers.
    events = Prefetch(service.run(turn))
    await asyncio.sleep(0)  # let it send the model request before we write our headers
    response = await open_stream(request)
    result: web.StreamResponse = await _cancel_on_disconnect(
        request, write_stream(response, events), fallback=response
    )
    return result


class Prefetch:
    """Runs an event generator in its own task from construction on, buffering its events;
    closing it cancels the task (and so the upstream model request)."""

    END = object()

    def __init__(self, events: AsyncGenerator[Event, None]) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump(events))

    async def _pump(self, events: AsyncGenerator[Event, None]) -> None:
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    self._queue.put_nowait(event)
        finally:
            self._queue.put_nowait(self.END)

    async def get(self) -> Any:
        return await self._queue.get()

    def drain(self) -> list[Any]:
        """Everything already waiting, without blocking."""
        items = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    async def close(self) -> None:
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def write_stream(response: web.StreamResponse, events: Prefetch) -> web.StreamResponse:
    """Write events as SSE with ids 1, 2, 3…; whatever is ready goes out in one write, so a
    busy daemon sends fewer, larger packets instead of falling behind."""
    n = 0
    try:
        while True:
            batch = events.drain()
            if not batch:
                try:
                    async with asyncio.timeout(STREAM_KEEPALIVE):
                        batch = [await events.get()]
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                batch.extend(events.drain())
            frames = []
            ended = False
            for item in batch:
                if item is Prefetch.END:
                    ended = True
                    break
                n += 1
                frames.append(encode(Event(item.type, item.data, item.timestamp, n)))
            if frames:
                await response.write(b"".join(frames))
            if ended:
                break
    finally:
        await events.close()
    await response.write_eof()
    return response


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
