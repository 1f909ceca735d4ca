"""One error envelope for every failure: {"error": {"code", "message"}}."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from localresearch.errors import LocalResearchError

log = logging.getLogger("localresearch.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS_BY_CODE = {
    "invalid_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "internal_error": 500,
    "provider_error": 502,
    "unavailable": 503,
}

CODE_BY_STATUS = {status: code for code, status in STATUS_BY_CODE.items()}


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


def error_middleware(refuse: Refusal) -> Middleware:
    """The app's one middleware (each layer costs on every request): `refuse` (the security
    guard) may answer first; then every exception becomes the envelope, unexpected ones logged
    with a request id."""

    @web.middleware
    async def envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = refuse(request)
        if refused is not None:
            return refused
        if "%00" in request.query_string:
            return error_response("invalid_request", "Query parameters must not contain NUL (%00)")
        try:
            return await handler(request)
        except APIError:
            raise
        except LocalResearchError as exc:
            return error_response(exc.code, exc.message)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            fallback = "invalid_request" if exc.status < 500 else "internal_error"
            code = CODE_BY_STATUS.get(exc.status, fallback)
            headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
            return error_response(
                code, _message_for_http(exc, request), status=exc.status, headers=headers
            )
        except (ConnectionResetError, TimeoutError) as exc:
            # The client went away; nothing useful to answer.
            log.debug("client gone during %s %s: %r", request.method, request.path, exc)
            raise
        except Exception:
            request_id = uuid.uuid4().hex[:12]
            log.exception(
                "unexpected error, request id %s (%s %s)", request_id, request.method, request.path
            )
            return error_response(
                "internal_error",
                f"Internal error (request id {request_id}; details are in the daemon log)",
                headers={"X-Request-Id": request_id},
            )

    return envelope
