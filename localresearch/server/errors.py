"""One error envelope for every failure: {"error": {"code", "message"}}."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from localresearch.errors import LocalResearchError
from localresearch.store.database import storage_problem, storage_unavailable

log = logging.getLogger("localresearch.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS_BY_CODE = {
    "invalid_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "request_timeout": 408,
    "payload_too_large": 413,
    "uri_too_long": 414,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "internal_error": 500,
    "provider_error": 502,
    "unavailable": 503,
}

CODE_BY_STATUS = {status: code for code, status in STATUS_BY_CODE.items()}
STARTED = web.RequestKey("started", web.StreamResponse)  # the response whose headers went out


def error_response(
    code: str, message: str, *, status: int | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    status = status or STATUS_BY_CODE.get(code, 500)
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


class APIError(web.HTTPException):
    """Raised by route code to answer with the envelope; carries its own code and message."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        self.status_code = status or STATUS_BY_CODE.get(code, 500)
        super().__init__(
            text=json.dumps({"error": {"code": code, "message": message}}),
            content_type="application/json",
        )


def _message_for_http(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 404:
        return f"No such endpoint: {request.method} {request.path}"
    if exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        return f"Method {request.method} not allowed on {request.path} (allowed: {allowed})"
    if exc.status == 413:
        from localresearch.server.keys import MAX_BODY

        limit = request.app.get(MAX_BODY, "the configured limit")
        return f"Request body too large (limit: {limit} bytes)"
    return exc.reason or "HTTP error"


Refusal = Callable[[web.Request], web.StreamResponse | None]
# None to go on at once, else what to await first (it may raise, e.g. Unavailable).
Waiter = Callable[[web.Request], Awaitable[None] | None]


def _surface_refusal(request: web.Request, problem: str) -> web.Response:
    """A 400 in the envelope of the surface the path belongs to (the query and sessions APIs
    have their own)."""
    from localresearch.server.access import ACCESS, refuse

    access = request.app.get(ACCESS)
    op = access.policies.get(request.match_info.route) if access is not None else None
    return refuse(op, "invalid_request", problem)


# Rewrites an error answer into the envelope of the surface its path belongs to, if it has one.
Dresser = Callable[[web.Request, web.StreamResponse], web.StreamResponse]


def error_middleware(
    refuse: Refusal, wait: Waiter | None = None, dress: Dresser | None = None
) -> Middleware:
    """The app's one middleware (each layer costs on every request): `wait` (the routes still
    loading) and `refuse` (the security guard) may answer first; then every exception becomes
    the envelope, unexpected ones logged with a request id. `dress` sees every error answer
    (the router's 404 and 405 included) before it goes out."""

    from localresearch.server.requests import query_problem

    @web.middleware
    async def dressed(request: web.Request, handler: Handler) -> web.StreamResponse:
        assert dress is not None
        try:
            response = await envelope(request, handler)
        except web.HTTPException as exc:  # APIError, or a status `_answer` passes on
            if exc.status < 400:
                raise
            response = web.Response(status=exc.status, body=exc.body, headers=exc.headers)
        return dress(request, response) if response.status >= 400 else response

    async def envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
        pending = wait(request) if wait is not None else None
        if pending is not None:
            try:
                await pending
            except Exception as exc:
                return _answer(request, exc)
        refused = refuse(request)
        if refused is not None:
            return refused
        problem = query_problem(request)
        if problem is not None:
            return _surface_refusal(request, problem)
        try:
            return await handler(request)
        except Exception as exc:
            started = request.get(STARTED)
            if started is not None and started.prepared:
                # Headers are out: an HTTP response now would land inside the stream.
                return await _end_started(request, started, exc)
            return _answer(request, exc)

    return dressed if dress is not None else web.middleware(envelope)


def _answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The envelope for an exception raised before anything was sent (or re-raise it)."""
    if isinstance(exc, APIError):
        raise exc
    if isinstance(exc, LocalResearchError):
        return error_response(exc.code, exc.message)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        fallback = "invalid_request" if exc.status < 500 else "internal_error"
        code = CODE_BY_STATUS.get(exc.status, fallback)
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return error_response(
            code, _message_for_http(exc, request), status=exc.status, headers=headers
        )
    if isinstance(exc, (ConnectionResetError, TimeoutError)):
        # The client went away; nothing useful to answer.
        log.debug("client gone during %s %s: %r", request.method, request.path, exc)
        raise exc
    cause = storage_problem(exc)
    if cause is not None:  # the disk, not the request: say so, and that nothing was kept
        log.error("%s %s: storage unavailable: %s (%s)", request.method, request.path, cause, exc)
        return error_response("unavailable", storage_unavailable(cause).message)
    request_id = _log_unexpected(request, exc)
    return error_response(
        "internal_error",
        f"Internal error (request id {request_id}; details are in the daemon log)",
        headers={"X-Request-Id": request_id},
    )


def _log_unexpected(request: web.Request, exc: Exception) -> str:
    request_id = uuid.uuid4().hex[:12]
    log.error(
        "unexpected error, request id %s (%s %s)",
        request_id,
        request.method,
        request.path,
        exc_info=exc,
    )
    return request_id


async def _end_started(
    request: web.Request, started: web.StreamResponse, exc: Exception
) -> web.StreamResponse:
    """End a stream that already began: a WebSocket closes with 1011, an event stream gets a
    final `error` event; never a second HTTP response inside the first."""
    if isinstance(exc, LocalResearchError):
        code, message = exc.code, exc.message
    elif isinstance(exc, (ConnectionError, TimeoutError)):
        log.debug("client gone during %s %s: %r", request.method, request.path, exc)
        return started
    else:
        request_id = _log_unexpected(request, exc)
        code = "internal_error"
        message = f"Internal error (request id {request_id}; details are in the daemon log)"
    try:
        if isinstance(started, web.WebSocketResponse):
            if not started.closed:
                await started.close(code=1011, message=message[:120].encode())
            return started
        if started.content_type != "text/event-stream":  # no way to say it: cut the body short
            if request.transport is not None:
                request.transport.close()
            return started
        event = {"type": "error", "data": {"code": code, "message": message}}
        await started.write(f"data: {json.dumps(event)}\n\n".encode())
        await started.write_eof()
    except (ConnectionError, RuntimeError):
        pass
    return started


def mark_started(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: remember what a handler began to send (see `_end_started`)."""
    request[STARTED] = response
