"""Deep research jobs over HTTP: start, stream (SSE), status, cancel, list and export."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import TYPE_CHECKING

from aiohttp import web

from localresearch.api.research import (
    JobList,
    JobListQuery,
    JobStarted,
    JobStatus,
    JobSummary,
    ReportJSON,
    ReportQuery,
    StartJob,
)
from localresearch.errors import Conflict, InvalidRequest, Unavailable
from localresearch.events import Event
from localresearch.server import sse
from localresearch.server.keys import RUNTIME, SHUTDOWN
from localresearch.server.requests import (
    INT_MAX,
    MAX_INT_DIGITS,
    body_model,
    model_response,
    query_model,
)

if TYPE_CHECKING:
    from localresearch.research.manager import JobManager

routes = web.RouteTableDef()


def _jobs(request: web.Request) -> JobManager:
    jobs: JobManager | None = getattr(request.app[RUNTIME], "jobs", None)
    if jobs is None:
        raise Unavailable("Research jobs are not running yet")
    return jobs


@routes.post("/api/research/deep")
async def start(request: web.Request) -> web.Response:
    body = await body_model(request, StartJob)
    job = await _jobs(request).submit(
        body.query, session_id=body.session_id, dimensions=body.dimensions, rounds=body.rounds
    )
    return model_response(JobStarted(research_id=job.id, status="started"))


@routes.get("/api/research/deep")
async def list_jobs(request: web.Request) -> web.Response:
    params = query_model(request, JobListQuery)
    views, total = await _jobs(request).list_jobs(params.limit, params.offset, params.status)
    end = params.offset + len(views)
    return model_response(
        JobList(
            jobs=[JobSummary.of(view) for view in views],
            total=total,
            limit=params.limit,
            offset=params.offset,
            next_offset=end if end < total else None,
        )
    )


@routes.get("/api/research/deep/{id}")
async def stream(request: web.Request) -> web.StreamResponse:
    jobs = _jobs(request)
    job_id = request.match_info["id"]
    await jobs.store.get(job_id)  # 404 in the envelope before the stream opens
    after = _resume_after(request)
    response = await sse.open_stream(request)
    await response.write(b": open\n\n")  # headers go out now; frames follow on the transport
    if SSE_WRITES == "response":
        return await _stream_with_writes(request, response, jobs, job_id, after)
    transport = request.transport
    chunked = response.headers.get("Transfer-Encoding", "").lower() == "chunked"

    def sink(batch: list[Event]) -> bool:
        """Called by the hub for each batch: one transport write, no task switch."""
        if transport is None or transport.is_closing():
            return False
        data = b"".join(_frame(job_id, e) for e in batch) if batch else _KEEPALIVE
        transport.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        if transport.get_write_buffer_size() > _SLOW_READER_BYTES:
            transport.close()  # far behind: drop it; it resumes with Last-Event-ID
            return False
        return True

    await jobs.stream_to(job_id, sink, after, request.app[SHUTDOWN], sse.KEEPALIVE_SECONDS)
    if transport is not None and not transport.is_closing():
        await response.write_eof()
    return response


# How research SSE frames reach the socket: "transport" (one synchronous write per batch from
# the hub, no task switch per subscriber) or "response" (aiohttp's StreamResponse.write, awaited
# per batch). scripts/bench_research.py --sse-writes compares them in one run.
SSE_WRITES = "transport"


async def _stream_with_writes(
    request: web.Request,
    response: web.StreamResponse,
    jobs: JobManager,
    job_id: str,
    after: int,
) -> web.StreamResponse:
    stop = request.app[SHUTDOWN]
    batches = jobs.subscribe_batches(job_id, after, stop, sse.KEEPALIVE_SECONDS)
    async with contextlib.aclosing(batches):
        async for batch in batches:
            data = b"".join(_frame(job_id, e) for e in batch) if batch else _KEEPALIVE
            await response.write(data)
    await response.write_eof()
    return response


def _resume_after(request: web.Request) -> int:
    """The event id to resume after; a malformed one is an error, not a silent full replay."""
    raw = request.headers.get("Last-Event-ID") or request.query.get("lastEventId") or ""
    raw = raw.strip()
    if not raw:
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_INT_DIGITS:
        raise InvalidRequest(f"Last-Event-ID must be a non-negative event id (got {raw[:40]!r})")
    after = int(raw)
    if after > INT_MAX:
        raise InvalidRequest(f"Last-Event-ID is out of range (at most {INT_MAX})")
    return after


_SLOW_READER_BYTES = 8 * 1024 * 1024
_KEEPALIVE = b": keep-alive\n\n"
_FRAMES: OrderedDict[tuple[str, int], bytes] = OrderedDict()
_FRAME_CACHE = 4096


def _frame(job_id: str, event: Event) -> bytes:
    """The SSE frame of an event, cached: 500 subscribers cost one JSON encoding, not 500."""
    key = (job_id, event.id or 0)
    frame = _FRAMES.get(key)
    if frame is None:
        frame = _FRAMES[key] = sse.encode(event)
        if len(_FRAMES) > _FRAME_CACHE:
            _FRAMES.popitem(last=False)
    return frame


@routes.get("/api/research/deep/{id}/status")
async def status(request: web.Request) -> web.Response:
    return model_response(JobStatus.of(await _jobs(request).snapshot(request.match_info["id"])))


@routes.delete("/api/research/deep/{id}")
async def cancel(request: web.Request) -> web.Response:
    await _jobs(request).cancel(request.match_info["id"])
    return web.Response(status=204)


@routes.get("/api/research/deep/{id}/report")
async def report(request: web.Request) -> web.Response:
    jobs = _jobs(request)
    job_id = request.match_info["id"]
    fmt = query_model(request, ReportQuery).format
    job = await jobs.store.get(job_id)
    saved = await jobs.store.report(job_id)
    if saved is None:
        if job.status == "error":
            raise Conflict(f"Research job {job_id} ended with an error: {job.error}")
        raise Conflict(f"Research job {job_id} has no report yet (status: {job.status})")
    if fmt == "md":
        return web.Response(text=saved.markdown, content_type="text/markdown", charset="utf-8")
    if fmt == "html":
        from localresearch.research.report import markdown_to_html

        page = markdown_to_html(saved.markdown, job.query)
        return web.Response(text=page, content_type="text/html", charset="utf-8")
    return model_response(
        ReportJSON(
            research_id=job.id,
            query=job.query,
            status=job.status,
            partial=saved.partial,
            markdown=saved.markdown,
            sources=saved.sources,
            updated_at=saved.updated_at,
            usage=await jobs.usage(job_id),
        )
    )
