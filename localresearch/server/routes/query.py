"""The query API over HTTP: /query (JSON or NDJSON), /query/stream, /query/batch and the
background /query/async, GET and DELETE /query/{id}. Errors use the surface's envelope."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from localresearch.api.base import convert, encode
from localresearch.api.query import (
    VERSIONS,
    BatchPage,
    BatchRequest,
    QueryAccepted,
    QueryCanceled,
    QueryRequest,
    QueryState,
    QueryStatus,
    StreamParam,
    partial_of,
)
from localresearch.errors import InvalidRequest, LocalResearchError, NotFound, Unavailable
from localresearch.server.access import principal_of
from localresearch.server.keys import RUNTIME
from localresearch.server.query_errors import QueryAPIError, envelope
from localresearch.server.requests import json_body, model_response, query_model

if TYPE_CHECKING:
    from localresearch.query.compose import QueryResult
    from localresearch.query.service import QueryRequest as CoreRequest
    from localresearch.query.service import QueryService

routes = web.RouteTableDef()

NDJSON = "application/x-ndjson"


def _service(request: web.Request) -> QueryService:
    service: QueryService | None = getattr(request.app[RUNTIME], "query", None)
    if service is None:
        raise Unavailable("The query service is not running yet")
    return service


def check_version(data: dict[str, Any], where: str = "version") -> None:
    """400 for a missing or unknown version, 410 Gone for a removed one."""
    if "version" not in data or data["version"] is None:
        raise InvalidRequest(f"Missing required parameter: {where}")
    version = data["version"]
    if not isinstance(version, str):
        raise InvalidRequest(f"Parameter {where} must be a string (got {type(version).__name__})")
    status = VERSIONS.get(version)
    known = ", ".join(v for v, s in VERSIONS.items() if s != "removed")
    if status is None:
        raise InvalidRequest(f"Unknown version {version!r} in {where} (supported: {known})")
    if status == "removed":
        raise QueryAPIError(
            "gone",
            f"Version {version!r}{'' if where == 'version' else f' in {where}'} is no longer "
            f"supported (supported: {known})",
            410,
        )


async def _core(
    request: web.Request, body: QueryRequest, models: dict[str, str] | None = None
) -> CoreRequest:
    """The contract's request as the core's, after the checks that need the configuration
    (`models` remembers the models a batch already checked)."""
    from localresearch.query.service import QueryRequest as Core
    from localresearch.query.webhooks import webhook_problem

    if body.webhook_url is not None:
        problem = webhook_problem(body.webhook_url)
        if problem:
            raise InvalidRequest(f"Parameter webhook_url: {problem}")
    model = None
    if body.model is not None:
        known = models if models is not None else {}
        if body.model not in known:
            known[body.model] = await _service(request).check_model(body.model)
        model = known[body.model]
    return Core(
        query=body.query,
        version=body.version,
        loops=body.loops,
        dimensions=body.dimensions,
        webhook_url=body.webhook_url,
        model=model,
    )


async def _one(request: web.Request) -> CoreRequest:
    data = await json_body(request)
    check_version(data)
    return await _core(request, convert(data, QueryRequest))


def _response(result: QueryResult) -> dict[str, Any]:
    return result.to_dict()


@routes.post("/query")
@envelope
async def query(request: web.Request) -> web.StreamResponse:
    params = query_model(request, StreamParam)
    core = await _one(request)
    if params.stream:
        return await _stream(request, core)
    result = await _service(request).run(core)
    return model_response(_response(result))


@routes.post("/query/stream")
@envelope
async def query_stream(request: web.Request) -> web.StreamResponse:
    query_model(request, StreamParam)  # no other parameters
    return await _stream(request, await _one(request))


def _line(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


async def _stream(request: web.Request, core: CoreRequest) -> web.StreamResponse:
    """NDJSON: one object per completed step, a blank line when quiet, then the result (or an
    error object) as the last line."""
    service = _service(request)
    keepalive = float(request.app[RUNTIME].config.api.stream_keepalive)
    items = service.stream(core, keepalive)
    await items.__anext__()  # the research has started (bad input raised before any byte)
    response = web.StreamResponse(
        headers={"Content-Type": NDJSON, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    metrics = request.app[RUNTIME].metrics
    gauge = metrics.open_streams.labels("ndjson") if metrics is not None else None
    try:
        await response.prepare(request)
        if gauge is not None:
            gauge.inc()
        try:
            async for item in items:
                if item.kind == "keepalive":
                    await response.write(b"\n")
                elif item.progress is not None:
                    await response.write(encode(partial_of(item.progress)) + b"\n")
                elif item.result is not None:
                    await response.write(_line(_response(item.result)))
        except LocalResearchError as exc:
            await response.write(_line({"version": core.version, **query_error_body(exc)}))
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    finally:
        await items.aclose()  # a client gone mid-stream: the research is aborted
        if gauge is not None and response.prepared:
            gauge.dec()
    return response


def query_error_body(exc: LocalResearchError) -> dict[str, Any]:
    return {"detail": exc.message, "error": {"code": exc.code, "message": exc.message}}


@routes.post("/query/batch")
@envelope
async def batch(request: web.Request) -> web.Response:
    page = query_model(request, BatchPage)
    data = await json_body(request)
    check_version(data)
    queries = data.get("queries")
    if isinstance(queries, list):
        for i, item in enumerate(queries):
            if isinstance(item, dict):
                check_version(item, f"queries[{i}].version")
    body = convert(data, BatchRequest)
    chosen = body.queries[(page.page - 1) * page.page_size : page.page * page.page_size]
    models: dict[str, str] = {}
    cores = [await _core(request, q, models) for q in chosen]  # all checked before any runs
    service = _service(request)
    outcomes = await asyncio.gather(
        *(service.run(c, mode="batch") for c in cores), return_exceptions=True
    )
    results: list[dict[str, Any]] = []
    for core, outcome in zip(cores, outcomes, strict=True):
        if isinstance(outcome, LocalResearchError):
            results.append({"version": core.version, **query_error_body(outcome)})
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            results.append(_response(outcome))
    return model_response(
        {
            "version": body.version,
            "page": page.page,
            "page_size": page.page_size,
            "total": len(body.queries),
            "results": results,
        }
    )


@routes.post("/query/async")
@envelope
async def submit(request: web.Request) -> web.Response:
    core = await _one(request)
    who = principal_of(request)
    query_id = await _service(request).submit(core, who.id if who is not None else None)
    return model_response(QueryAccepted(query_id=query_id))


async def _run_of(request: web.Request) -> Any:
    raw = request.match_info["id"]
    try:
        query_id = str(uuid.UUID(raw))
    except ValueError:
        raise NotFound(f"No query with id {raw[:80]!r}") from None
    run = await _service(request).get(query_id)
    who = principal_of(request)
    if who is not None and not who.owns(run.owner):
        raise NotFound(f"No query with id {query_id!r}")
    return run


@routes.get("/query/{id}")
@envelope
async def state(request: web.Request) -> web.Response:
    run = await _run_of(request)
    if run.status == "complete" and run.result is not None:
        return model_response({**run.result, "query_id": run.id, "status": "complete"})
    if run.status == "error":
        return model_response(QueryState(query_id=run.id, status="error", error=run.error or ""))
    # The spec has no `queued`: to its clients a query not started yet is running.
    status = "running" if run.status == "queued" else run.status
    return model_response(QueryState(query_id=run.id, status=cast(QueryStatus, status)))


@routes.delete("/query/{id}")
@envelope
async def cancel(request: web.Request) -> web.Response:
    run = await _run_of(request)
    await _service(request).cancel(run.id)
    return model_response(QueryCanceled(query_id=run.id, status="canceled"))
