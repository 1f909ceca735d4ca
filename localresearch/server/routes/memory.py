"""Memory: search, statistics, reindex and sources (translation to MemoryService only)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from localresearch.api.memory import (
    AddSource,
    FileLines,
    FileQuery,
    Hit,
    MemoryStats,
    Reindex,
    ReindexReport,
    RemoveSource,
    SearchBody,
    SearchQuery,
    SearchResults,
    Source,
    SourceList,
    SourceRemoved,
)
from localresearch.errors import LocalResearchError, Unavailable
from localresearch.events import Event
from localresearch.memory.kinds import parse_kinds
from localresearch.server.errors import APIError
from localresearch.server.keys import RUNTIME
from localresearch.server.requests import body_model, model_response, query_model
from localresearch.server.sse import send_events

if TYPE_CHECKING:
    from localresearch.memory.service import MemoryService
    from localresearch.memory.stats import VectorProgress
    from localresearch.memory.types import SearchHit

routes = web.RouteTableDef()

PROGRESS_EVERY_SECONDS = 0.2
VECTOR_EVENTS_EVERY_SECONDS = 0.5


def _memory(request: web.Request) -> MemoryService:
    memory = request.app[RUNTIME].memory
    if memory is None:
        raise Unavailable("The memory index is not running")
    return memory


def hit_model(hit: SearchHit) -> Hit:
    """The spec's result fields first, then extras for opening the hit."""
    return Hit(
        file=hit.file,
        content=hit.content,
        score=round(hit.score, 6),
        line_start=hit.line_start,
        line_end=hit.line_end,
        path=hit.path,
        heading=hit.heading,
        chunk_id=hit.chunk_id,
        kind=hit.kind,
        page=hit.page,
    )


@routes.get("/api/memory/search")
async def search(request: web.Request) -> web.Response:
    if request.query.get("q") is None:
        raise APIError("invalid_request", "Missing required parameter: q")
    params = query_model(request, SearchQuery)
    return await _search(request, params.q, params)


async def _search(
    request: web.Request, query: str, params: SearchQuery | SearchBody
) -> web.Response:
    try:
        kinds = parse_kinds(params.kind, params.include_logs)
    except ValueError as exc:
        raise APIError("invalid_request", f"Parameter kind: {exc}") from None
    hits = await _memory(request).search(query, params.limit, kinds=kinds, prefix=params.prefix)
    results = [hit_model(hit) for hit in hits]
    return model_response(SearchResults(query=query, results=results, total=len(results)))


@routes.post("/api/memory/search")
async def search_post(request: web.Request) -> web.Response:
    """The same search with the query in a JSON body: no URL length limit."""
    body = await body_model(request, SearchBody)
    return await _search(request, body.query, body)


@routes.get("/api/memory/stats")
async def stats(request: web.Request) -> web.Response:
    return model_response(MemoryStats.of(await _memory(request).stats()))


def _wants_stream(request: web.Request) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


@routes.post("/api/memory/reindex")
async def reindex(request: web.Request) -> web.StreamResponse:
    """Returns when the index is current (and, unless `wait_vectors` is false, its vectors);
    with `Accept: text/event-stream`, streams progress of both."""
    body = await body_model(request, Reindex, required=False)
    force, wait_vectors = bool(body.force), body.wait_vectors
    memory = _memory(request)
    if not _wants_stream(request):
        report = await memory.reindex(force=force, wait_vectors=wait_vectors)
        return model_response(ReindexReport.of(report))
    return await send_events(request, _reindex_events(memory, force, wait_vectors))


async def _vector_events(memory: MemoryService) -> AsyncGenerator[Event, None]:
    """`vectors` events (done, total, rate, ETA) until the background embedding is idle."""
    last: VectorProgress | None = None
    while True:
        idle = memory.vector_worker is None or memory.vector_worker.idle
        progress = memory.vector_progress()
        if progress is not None and progress != last:
            last = progress
            yield Event("vectors", dataclasses.asdict(progress))
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
        yield Event("done", ReindexReport.of(report).to_dict())
    finally:
        # A client that goes away does not stop the pass: the index still gets current.
        task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


@routes.get("/api/memory/sources")
async def list_sources(request: web.Request) -> web.Response:
    memory = _memory(request)
    sources = await memory.sources()
    files = await memory.source_files()
    listed = [Source.of(s, files.get(str(s.path), 0)) for s in sources]
    return model_response(SourceList(sources=listed))


@routes.post("/api/memory/sources")
async def add_source(request: web.Request) -> web.Response:
    body = await body_model(request, AddSource)
    source = await _memory(request).add_source(body.path, body.glob_text())
    return model_response(Source.of(source), status=201)


@routes.delete("/api/memory/sources")
async def remove_source(request: web.Request) -> web.Response:
    path = request.query.get("path")
    if not path:
        path = (await body_model(request, RemoveSource, required=False)).path
    if not path:
        raise APIError("invalid_request", "Missing required parameter: path")
    removed = await _memory(request).remove_source(path)
    return model_response(SourceRemoved(path=removed.path, files_removed=removed.files_removed))


@routes.get("/api/memory/file")
async def view_file(request: web.Request) -> web.Response:
    """A cited file's lines (only under a memory source): the page's citation view."""
    query = query_model(request, FileQuery)
    end = query.end if query.end is not None else query.line
    view = await _memory(request).view_file(query.path, query.line, end, query.context, query.page)
    return model_response(FileLines.of(view))
