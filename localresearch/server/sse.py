"""Server-Sent Events: the Event contract on the wire, with ids and keep-alive comments."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from aiohttp import web

from localresearch.events import Event

KEEPALIVE_SECONDS = 15.0


def last_event_id(request: web.Request) -> int | None:
    """The id to resume after, from the Last-Event-ID header (or ?lastEventId= for curl)."""
    raw = request.headers.get("Last-Event-ID") or request.query.get("lastEventId")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return None


async def open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    return response


def encode(event: Event) -> bytes:
    """No `event:` line: clients of the spec read every event through `onmessage`."""
    lines = []
    if event.id is not None:
        lines.append(f"id: {event.id}")
    lines.append(f"data: {event.to_json()}")
    return ("\n".join(lines) + "\n\n").encode()


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


async def write_stream(
    response: web.StreamResponse, events: Prefetch, *, keepalive: float = KEEPALIVE_SECONDS
) -> web.StreamResponse:
    """Write events as SSE with ids 1, 2, 3…; whatever is ready goes out in one write, so a
    busy daemon sends fewer, larger packets instead of falling behind."""
    n = 0
    try:
        while True:
            batch = events.drain()
            if not batch:
                try:
                    async with asyncio.timeout(keepalive):
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


async def send_events(
    request: web.Request, events: AsyncGenerator[Event, None]
) -> web.StreamResponse:
    """Stream an event generator as SSE (ids 1, 2, 3…); it runs ahead while writes wait."""
    response = await open_stream(request)
    return await write_stream(response, Prefetch(events))
