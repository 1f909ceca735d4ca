"""The research-sessions API over HTTP (specs/research-sessions-api.md): translate between the
spec's JSON and SSE and `runtime.research_sessions`, in the spec's envelope."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from localresearch.access.roles import ALL, OWNER_ROLE, Principal
from localresearch.api.base import convert, encode, to_builtins
from localresearch.api.sessions_api import (
    PREFIX,
    CreateSession,
    EditPlan,
    Executed,
    Extended,
    LegacyQuery,
    Message,
    PhaseMessage,
    Plan,
    Questions,
    Refine,
    Results,
    SessionCreated,
    SessionDetail,
    SessionSummary,
    Settings,
    SourceModel,
    SubmitFeedback,
    SubmitTopic,
    TaskModel,
    TaskResult,
)
from localresearch.errors import InvalidRequest, LocalResearchError, Unavailable
from localresearch.events import utc_now_iso
from localresearch.server import sse
from localresearch.server.access import principal_of
from localresearch.server.errors import STATUS_BY_CODE
from localresearch.server.keys import RUNTIME, SHUTDOWN
from localresearch.server.requests import body_model, json_body
from localresearch.server.spec_envelope import spec_error

if TYPE_CHECKING:
    from localresearch.research.types import Source
    from localresearch.research_sessions.flow import SessionService
    from localresearch.research_sessions.store import SessionRow, StoredEvent

routes = web.RouteTableDef()
ID = f"{PREFIX}/{{sessionId}}"
STREAM_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}
_LOCAL = Principal("owner", OWNER_ROLE, ALL, "local", limited=False)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ok(data: Any, status: int = 200) -> web.Response:
    body = encode({"success": True, "data": to_builtins(data)})
    return web.Response(body=body, status=status, content_type="application/json")


def spec(handler: Handler) -> Handler:
    """The core's errors in the spec's envelope and statuses: a call out of order is a 400
    with the phase details, a failing model provider a 500 saying so (the spec has no 502)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except LocalResearchError as exc:
            from localresearch.research_sessions.phases import PhaseError
            from localresearch.research_sessions.settings import SettingsError

            details: dict[str, Any] = {}
            message = exc.message
            if isinstance(exc, PhaseError):
                details = {"phase": exc.phase, "expectedPhase": list(exc.expected)}
            elif isinstance(exc, SettingsError):
                details = {"field": f"settings.{exc.field}", "choices": exc.choices}
            status = STATUS_BY_CODE.get(exc.code, 500)
            if exc.code == "provider_error":
                status, message = 500, f"The model provider failed: {message}"
            return spec_error(status, message, details=details)

    return wrapped


def _service(request: web.Request) -> SessionService:
    service: SessionService | None = getattr(request.app[RUNTIME], "research_sessions", None)
    if service is None:
        raise Unavailable("Research sessions are not running yet")
    return service


def _who(request: web.Request) -> Principal:
    return principal_of(request) or _LOCAL


def _iso(epoch: float) -> str:
    from localresearch.research_sessions.store import iso

    return iso(epoch)


def _summary(row: SessionRow) -> SessionSummary:
    return SessionSummary(
        id=row.id, phase=row.phase, topic=row.topic, created_at=row.created_at,
        updated_at=row.updated_at, expires_at=_iso(row.expires_at),
    )  # fmt: skip


def _language(settings: dict[str, Any]) -> dict[str, str]:
    from localresearch.research_sessions.settings import SessionSettings

    chosen = SessionSettings.from_dict(settings)
    note = chosen.language_note
    return {"report_language": chosen.report_language, **({"language_note": note} if note else {})}


def _detail(row: SessionRow) -> SessionDetail:
    return SessionDetail(
        id=row.id, phase=row.phase, topic=row.topic, questions=row.questions,
        feedback=row.feedback, report_plan=row.report_plan, final_report=row.final_report,
        progress=row.progress, settings=_wire_settings(row.settings), created_at=row.created_at,
        updated_at=row.updated_at, expires_at=_iso(row.expires_at),
        **({"error": row.error} if row.error else {}), **_language(row.settings),
    )  # fmt: skip


def _wire_settings(settings: dict[str, Any]) -> dict[str, Any]:
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(p.title() for p in rest)

    return {camel(k): v for k, v in settings.items()}


def _sources(sources: list[Source]) -> list[SourceModel]:
    return [
        SourceModel(title=s.title, url=s.url or s.location, content=s.passage[:2000])
        for s in sources
    ]


def _check_settings_names(settings: Any) -> None:
    """An unknown setting is 400 naming it and the known ones."""
    from localresearch.research_sessions.settings import SettingsError

    if not isinstance(settings, dict):
        return
    known = [f.encode_name for f in msgspec.structs.fields(Settings)]
    for name in settings:
        if name not in known:
            raise SettingsError(str(name)[:64], f"Unknown setting {str(name)[:64]!r}", known)


@routes.post(PREFIX)
@spec
async def create(request: web.Request) -> web.Response:
    from localresearch.research_sessions.settings import resolve

    raw = await json_body(request, required=False, plain_text=True)
    _check_settings_names(raw.get("settings"))
    body = convert(raw, CreateSession)
    requested = body.settings.to_dict() if body.settings is not None else {}
    settings = await resolve(request.app[RUNTIME].config, requested)
    row = await _service(request).create(_who(request), settings)
    note = settings.language_note
    created = SessionCreated(
        session_id=row.id, phase=row.phase, message="Session created successfully",
        expires_at=_iso(row.expires_at), **({"language_note": note} if note else {}),
    )  # fmt: skip
    return _ok(created, status=201)


@routes.get(PREFIX)
@spec
async def list_sessions(request: web.Request) -> web.Response:
    rows = await _service(request).list_sessions(_who(request))
    return _ok([_summary(r) for r in rows])


@routes.get(ID)
@spec
async def get(request: web.Request) -> web.Response:
    row = await _service(request).get(request.match_info["sessionId"], _who(request))
    return _ok(_detail(row))


@routes.delete(ID)
@spec
async def delete(request: web.Request) -> web.Response:
    await _service(request).delete(request.match_info["sessionId"], _who(request))
    return _ok(Message(message="Session deleted successfully"))


@routes.post(f"{ID}/questions")
@spec
async def questions(request: web.Request) -> web.Response:
    body = await body_model(request, SubmitTopic, plain_text=True)
    row = await _service(request).questions(
        request.match_info["sessionId"], _who(request), body.topic
    )
    return _ok(Questions(session_id=row.id, questions=row.questions, phase=row.phase))


@routes.post(f"{ID}/feedback")
@spec
async def feedback(request: web.Request) -> web.Response:
    body = await body_model(request, SubmitFeedback, plain_text=True)
    row = await _service(request).feedback(
        request.match_info["sessionId"], _who(request), body.feedback
    )
    return _ok(
        PhaseMessage(session_id=row.id, phase=row.phase, message="Feedback processed successfully")
    )


@routes.post(f"{ID}/plan")
@spec
async def plan(request: web.Request) -> web.Response:
    row = await _service(request).plan(request.match_info["sessionId"], _who(request))
    tasks = [TaskModel(query=t.query, focus=t.focus) for t in row.tasks]
    return _ok(Plan(session_id=row.id, report_plan=row.report_plan, tasks=tasks, phase=row.phase))


@routes.put(f"{ID}/plan")
@spec
async def edit_plan(request: web.Request) -> web.Response:
    from localresearch.research_sessions.store import Task

    body = await body_model(request, EditPlan, plain_text=True)
    tasks = [Task(query=t.query, focus=t.focus) for t in body.tasks]
    row = await _service(request).edit_plan(request.match_info["sessionId"], _who(request), tasks)
    shown = [TaskModel(query=t.query, focus=t.focus) for t in row.tasks]
    return _ok(Plan(session_id=row.id, report_plan=row.report_plan, tasks=shown, phase=row.phase))


async def _results(service: SessionService, row: SessionRow) -> list[TaskResult]:
    _row, found = await service.results(row.id, _LOCAL)
    return [TaskResult(query=q, sources=_sources(s)) for q, s in found]


@routes.post(f"{ID}/execute")
@spec
async def execute(request: web.Request) -> web.Response:
    service = _service(request)
    row = await service.execute(request.match_info["sessionId"], _who(request))
    results = await _results(service, row)
    if row.phase == "error":
        return spec_error(
            500,
            row.error or "Research execution failed",
            details={"sessionId": row.id, "phase": row.phase, "finalReport": row.final_report},
        )
    return _ok(
        Executed(session_id=row.id, final_report=row.final_report, results=results, phase=row.phase)
    )


@routes.get(f"{ID}/results")
@spec
async def results(request: web.Request) -> web.Response:
    service = _service(request)
    row = await service.get(request.match_info["sessionId"], _who(request))
    found = await _results(service, row)
    return _ok(Results(session_id=row.id, phase=row.phase, results=found, progress=row.progress))


@routes.post(f"{ID}/refine")
@spec
async def refine(request: web.Request) -> web.Response:
    body = await body_model(request, Refine, plain_text=True)
    row = await _service(request).refine(
        request.match_info["sessionId"], _who(request), body.phase, body.refinement
    )
    return _ok(
        PhaseMessage(session_id=row.id, phase=row.phase, message="Session refined successfully")
    )


@routes.post(f"{ID}/extend")
@spec
async def extend(request: web.Request) -> web.Response:
    row = await _service(request).extend(request.match_info["sessionId"], _who(request))
    return _ok(
        Extended(session_id=row.id, expires_at=_iso(row.expires_at), message="Session extended")
    )


# -- streams --------------------------------------------------------------------------------


def _frame(event: StoredEvent) -> bytes:
    return f"id: {event.id}\nevent: {event.event}\ndata: {json.dumps(event.data)}\n\n".encode()


def _resume_after(request: web.Request) -> int:
    raw = (request.headers.get("Last-Event-ID") or request.query.get("lastEventId") or "").strip()
    if not raw:
        return 0
    if not raw.isascii() or not raw.isdigit():
        raise InvalidRequest(f"Last-Event-ID must be a non-negative event id (got {raw[:40]!r})")
    return int(raw)


_FRAMES: OrderedDict[tuple[str, int], bytes] = OrderedDict()
_FRAME_CACHE = 4096
_SLOW_READER_BYTES = 8 * 1024 * 1024


def _cached_frame(session_id: str, event: StoredEvent) -> bytes:
    """One encoding per event, however many subscribers."""
    key = (session_id, event.id)
    frame = _FRAMES.get(key)
    if frame is None:
        frame = _FRAMES[key] = _frame(event)
        if len(_FRAMES) > _FRAME_CACHE:
            _FRAMES.popitem(last=False)
    return frame


async def _pump(
    request: web.Request, response: web.StreamResponse, service: SessionService, row: SessionRow,
    after: int,
) -> None:  # fmt: skip
    """Write the session's events until a final report or error newer than the connection,
    with keep-alive comments while nothing happens. Live events are written by the service's
    fan-out straight to the transport (no task per subscriber and event)."""
    from localresearch.research_sessions.flow import TERMINAL_EVENTS

    transport = request.transport
    chunked = response.headers.get("Transfer-Encoding", "").lower() == "chunked"
    finished = asyncio.Event()
    state = {"last": after, "live": False}
    held: list[StoredEvent | None] = []

    def send(data: bytes) -> None:
        if transport is None or transport.is_closing():
            finished.set()
            return
        transport.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        if transport.get_write_buffer_size() > _SLOW_READER_BYTES:
            transport.close()  # far behind: drop it; it resumes with Last-Event-ID
            finished.set()

    def deliver(event: StoredEvent | None) -> None:
        if event is None:
            finished.set()
            return
        if event.id <= state["last"] or finished.is_set():
            return
        state["last"] = event.id
        send(_cached_frame(row.id, event))
        if event.event in TERMINAL_EVENTS and event.id >= row.last_event_id:
            finished.set()

    def sink(event: StoredEvent | None) -> None:
        if state["live"]:
            deliver(event)
        else:
            held.append(event)

    detach = service.attach(row.id, sink)
    try:
        for event in await service.store.events(row.id, after):
            deliver(event)
        for item in held:
            deliver(item)
        state["live"] = True
        shutdown = request.app[SHUTDOWN]
        while not finished.is_set() and not shutdown.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), sse.KEEPALIVE_SECONDS)
            if not finished.is_set():
                send(b": keep-alive\n\n")
    finally:
        detach()


@routes.get(f"{ID}/stream")
@spec
async def stream(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    row = await service.get(request.match_info["sessionId"], _who(request))
    after = _resume_after(request)
    response = web.StreamResponse(headers=STREAM_HEADERS)
    await response.prepare(request)
    connected = {"sessionId": row.id, "phase": row.phase, "timestamp": utc_now_iso()}
    await response.write(f"event: connected\ndata: {json.dumps(connected)}\n\n".encode())
    await _pump(request, response, service, row, after)
    if request.transport is not None and not request.transport.is_closing():
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
    return response


@routes.post("/api/sse")
@spec
async def legacy(request: web.Request) -> web.StreamResponse:
    """The whole flow from one query (no questions asked), streamed as the session's events."""
    from localresearch.research_sessions.settings import resolve

    body = await body_model(request, LegacyQuery, plain_text=True)
    service = _service(request)
    who = _who(request)
    settings = await resolve(request.app[RUNTIME].config, {})
    row = await service.create(who, settings)
    work = asyncio.create_task(service.run_whole(row.id, who, body.query))
    # A failure is the session's `error` event on the stream; the task's exception is consumed.
    work.add_done_callback(lambda task: task.cancelled() or task.exception())
    response = web.StreamResponse(headers=STREAM_HEADERS)
    await response.prepare(request)
    connected = {"sessionId": row.id, "phase": row.phase, "timestamp": utc_now_iso()}
    await response.write(f"event: connected\ndata: {json.dumps(connected)}\n\n".encode())
    await _pump(request, response, service, row, 0)
    if request.transport is not None and not request.transport.is_closing():
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
    return response


PARIS_TOPIC = "Paris, the capital of France: its history and landmarks"
PARIS_FEEDBACK = "Focus on history since 1800, landmarks and its role as capital; a short overview"


@routes.post("/api/test/mock-paris-flow")
@spec
async def mock_paris_flow(request: web.Request) -> web.Response:
    """A complete flow on a fixed topic with fixed answers, for testing clients."""
    from localresearch.research_sessions.settings import resolve

    service = _service(request)
    who = _who(request)
    settings = await resolve(request.app[RUNTIME].config, {})
    row = await service.create(who, settings)
    row = await service.run_whole(row.id, who, PARIS_TOPIC, PARIS_FEEDBACK)
    return _ok(_detail(row))
