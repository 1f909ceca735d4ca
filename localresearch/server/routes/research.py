"""Deep research jobs over HTTP: start, stream (SSE), status, cancel, list and export."""

from __future__ import annotations

from aiohttp import web

from localresearch.errors import Conflict, InvalidRequest, Unavailable
from localresearch.research.manager import JobManager
from localresearch.research.report import markdown_to_html
from localresearch.server.keys import RUNTIME, SHUTDOWN
from localresearch.server.requests import field, int_param, json_body
from localresearch.server.sse import last_event_id, send_events

routes = web.RouteTableDef()

_STATUSES = ("queued", "running", "complete", "error", "cancelled")


def _jobs(request: web.Request) -> JobManager:
    jobs: JobManager | None = getattr(request.app[RUNTIME], "jobs", None)
    if jobs is None:
        raise Unavailable("Research jobs are not running yet")
    return jobs


@routes.post("/api/research/deep")
async def start(request: web.Request) -> web.Response:
    body = await json_body(request)
    query = field(body, "query", str, required=True)
    session_id = field(body, "sessionId", str)
    dimensions = field(body, "dimensions", int)
    rounds = field(body, "rounds", int)
    job = await _jobs(request).submit(
        query, session_id=session_id, dimensions=dimensions, rounds=rounds
    )
    return web.json_response({"researchId": job.id, "status": "started"})


@routes.get("/api/research/deep")
async def list_jobs(request: web.Request) -> web.Response:
    limit = int_param(request, "limit", 20, low=1, high=200)
    offset = int_param(request, "offset", 0, low=0, high=10**9)
    status = request.query.get("status") or None
    if status is not None and status not in _STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(_STATUSES)} (got {status!r})")
    return web.json_response(await _jobs(request).list_jobs(limit, offset, status))


@routes.get("/api/research/deep/{id}")
async def stream(request: web.Request) -> web.StreamResponse:
    jobs = _jobs(request)
    job_id = request.match_info["id"]
    await jobs.store.get(job_id)  # 404 in the envelope before the stream opens
    after = last_event_id(request) or 0
    events = jobs.subscribe(job_id, after, request.app[SHUTDOWN])
    return await send_events(request, events)


@routes.get("/api/research/deep/{id}/status")
async def status(request: web.Request) -> web.Response:
    return web.json_response(await _jobs(request).snapshot(request.match_info["id"]))


@routes.delete("/api/research/deep/{id}")
async def cancel(request: web.Request) -> web.Response:
    await _jobs(request).cancel(request.match_info["id"])
    return web.Response(status=204)


@routes.get("/api/research/deep/{id}/report")
async def report(request: web.Request) -> web.Response:
    jobs = _jobs(request)
    job_id = request.match_info["id"]
    fmt = request.query.get("format", "md")
    if fmt not in ("md", "html", "json"):
        raise InvalidRequest(f"format must be md, html or json (got {fmt!r})")
    job = await jobs.store.get(job_id)
    saved = await jobs.store.report(job_id)
    if saved is None:
        raise Conflict(f"Research job {job_id} has no report yet (status: {job.status})")
    if fmt == "md":
        return web.Response(text=saved.markdown, content_type="text/markdown", charset="utf-8")
    if fmt == "html":
        page = markdown_to_html(saved.markdown, job.query)
        return web.Response(text=page, content_type="text/html", charset="utf-8")
    return web.json_response(
        {
            "researchId": job.id,
            "query": job.query,
            "status": job.status,
            "partial": saved.partial,
            "markdown": saved.markdown,
            "sources": saved.sources,
            "updatedAt": saved.updated_at,
            "usage": await jobs.usage(job_id),
        }
    )
