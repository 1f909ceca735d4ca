"""Server-Sent Events: the Event contract on the wire, with ids and keep-alive comments."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

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


async def send_events(
    request: web.Request,
    events: AsyncIterator[Event],
    *,
    keepalive: float = KEEPALIVE_SECONDS,
    response: web.StreamResponse | None = None,
) -> web.StreamResponse:
    """Write events as they come; send a comment when idle so proxies keep the line open."""
    response = response or await open_stream(request)
    iterator = events.__aiter__()
    pending: asyncio.Task[Event] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=keepalive)
            if not done:
                await response.write(b": keep-alive\n\n")
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                break
            finally:
                if done:
                    pending = None
            await response.write(encode(event))
    finally:
        if pending is not None:
            pending.cancel()
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
    await response.write_eof()
    return response
