"""Memory: search, statistics, reindex and sources (translation to MemoryService only)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from localresearch.errors import LocalResearchError, Unavailable
from localresearch.events import Event
from localresearch.server.errors import APIError
from localresearch.server.keys import RUNTIME
from localresearch.server.requests import field, int_param, json_body
from localresearch.server.sse import send_events

if TYPE_CHECKING:
    from localresearch.memory.service import MemoryService
    from localresearch.memory.types import SearchHit

routes = web.RouteTableDef()

PROGRESS_EVERY_SECONDS = 0.2
VECTOR_EVENTS_EVERY_SECONDS = 0.5


def _memory(request: web.Request) -> MemoryService:
    memory = request.app[RUNTIME].memory
    if memory is None:
        raise Unavailable("The memory index is not running")
    return memory


def hit_json(hit: SearchHit) -> dict[str, Any]:
    """The spec's result fields first, then extras for opening the hit."""
    return {
        "file": hit.file,
        "content": hit.content,
        "score": round(hit.score, 6),
        "line_start": hit.line_start,
        "line_end": hit.line_end,
        "path": hit.path,
        "heading": hit.heading,
        "chunk_id": hit.chunk_id,
    }


@routes.get("/api/memory/search")
async def search(request: web.Request) -> web.Response:
    query = request.query.get("q")
    if query is None:
        raise APIError("invalid_request", "Missing required parameter: q")
    limit = int_param(request, "limit", 10, low=1, high=1000)
    hits = await _memory(request).search(query, limit)
    results = [hit_json(hit) for hit in hits]
    return web.json_response({"query": query, "results": results, "total": len(results)})


@routes.get("/api/memory/stats")
async def stats(request: web.Request) -> web.Response:
    return web.json_response(await _memory(request).stats())


def _wants_stream(request: web.Request) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


@routes.post("/api/memory/reindex")
async def reindex(request: web.Request) -> web.StreamResponse:
    """Returns when the index is current (and, unless `wait_vectors` is false, its vectors);
    with `Accept: text/event-stream`, streams progress of both."""
    body = await json_body(request, required=False)
    force = bool(field(body, "force", bool, default=False))
    wait_vectors = bool(field(body, "wait_vectors", bool, default=True))
    memory = _memory(request)
    if not _wants_stream(request):
        report = await memory.reindex(force=force, wait_vectors=wait_vectors)
        return web.json_response(report.to_dict())
    return await send_events(request, _reindex_events(memory, force, wait_vectors))


async def _vector_events(memory: MemoryService) -> AsyncGenerator[Event, None]:
    """`vectors` events (done, total, rate, ETA) until the background embedding is idle."""
    last: dict[str, Any] | None = None
    while True:
        idle = memory.vector_worker is None or memory.vector_worker.idle
        progress = memory.vector_progress()
        if progress is not None and progress != last:
            last = progress
            yield Event("vectors", progress)
        if idle:
            return
        await asyncio.sleep(VECTOR_EVENTS_EVERY_SECONDS)


async def _reindex_events(
    memory: MemoryService, force: bool, wait_vectors: bool = True
) -> AsyncGenerator[Event, None]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, int, str]] = asyncio.Queue()
    last = 0.0

    def progress(done: int, total: int, name: str) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= PROGRESS_EVERY_SECONDS:
            last = now
            loop.call_soon_threadsafe(queue.put_nowait, (done, total, name))

    task = asyncio.ensure_future(memory.reindex(force=force, progress=progress, wait_vectors=False))
    yield Event("start", {"force": force})
    try:
        while not task.done():
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                done, total, name = getter.result()
                yield Event("progress", {"files_done": done, "files_total": total, "file": name})
            else:
                getter.cancel()
        try:
            report = task.result()
        except LocalResearchError as exc:
            yield Event("error", {"code": exc.code, "message": exc.message})
            return
        if wait_vectors:  # BM25 is current: the new chunks' vectors follow
            async for event in _vector_events(memory):
                yield event
        yield Event("done", report.to_dict())
    finally:
        # A client that goes away does not stop the pass: the index still gets current.
        task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


@routes.get("/api/memory/sources")
async def list_sources(request: web.Request) -> web.Response:
    sources = await _memory(request).sources()
    return web.json_response({"sources": [s.to_dict() for s in sources]})


@routes.post("/api/memory/sources")
async def add_source(request: web.Request) -> web.Response:
    body = await json_body(request)
    path = field(body, "path", str, required=True)
    glob = field(body, "glob", (str, list), default="")
    if isinstance(glob, list):
        if not all(isinstance(g, str) for g in glob):
            raise APIError("invalid_request", "Parameter glob must be a string or list of strings")
        glob = ",".join(glob)
    source = await _memory(request).add_source(path, glob)
    return web.json_response(source.to_dict(), status=201)


@routes.delete("/api/memory/sources")
async def remove_source(request: web.Request) -> web.Response:
    path = request.query.get("path")
    if not path:
        body = await json_body(request, required=False)
        path = field(body, "path", str)
    if not path:
        raise APIError("invalid_request", "Missing required parameter: path")
    return web.json_response(await _memory(request).remove_source(path))
