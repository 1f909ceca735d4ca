"""The research-sessions API's envelope on its own paths: `{"success": false, "error":
{"message", "code", "details"}}` with the spec's codes, for refusals made before a route runs
(credentials, permissions, rate limits, body size) as for the routes' own errors. Its event
stream also takes the key from `?api_key=` or the `dr_api_key` cookie (EventSource cannot send
headers)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from localresearch.server.access import ACCESS
from localresearch.server.errors import Handler

PATHS = ("/api/research/sessions", "/api/sse", "/api/test/mock-paris-flow")
QUERY_KEYS = ("api_key", "apiKey", "key")
COOKIE = "dr_api_key"

_BY_STATUS = {
    401: "AUTHENTICATION_REQUIRED",
    403: "ACCESS_DENIED",
    404: "SESSION_NOT_FOUND",
    429: "RATE_LIMITED",
}
_KEPT_HEADERS = ("Retry-After", "Allow", "X-Request-Id")


# Not in the spec's table, which has no code for them: an unknown path (SESSION_NOT_FOUND would
# tell a client that an existing session is gone) and a method the path does not take.
_UNKNOWN_PATH, _WRONG_METHOD = "NOT_FOUND", "METHOD_NOT_ALLOWED"


def spec_code(status: int) -> str:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return "INTERNAL_ERROR" if status >= 500 else "INVALID_REQUEST"


def spec_error(
    status: int,
    message: str,
    *,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    code: str | None = None,
) -> web.Response:
    body = {
        "success": False,
        "error": {
            "message": message,
            "code": code or spec_code(status),
            "details": details or {},
        },
    }
    return web.json_response(body, status=status, headers=headers)


def _with_stream_key(request: web.Request) -> web.Request:
    """The stream's key from the query string or cookie, as an Authorization header."""
    headers = request.headers
    if headers.get("Authorization") or headers.get("X-API-Key"):
        return request
    key = next((request.query[k] for k in QUERY_KEYS if request.query.get(k)), None)
    key = key or request.cookies.get(COOKIE)
    if not key:
        return request
    merged = dict(headers)
    merged["Authorization"] = f"Bearer {key}"
    return request.clone(headers=merged)


def _translate(request: web.Request, status: int, text: str, headers: Any) -> web.Response | None:
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message", "") if isinstance(error, dict) else ""
    message = message or text[:200] or "Error"
    wrong_key = False
    if status == 403 and (request.headers.get("Authorization") or request.headers.get("X-API-Key")):
        access = request.app.get(ACCESS)
        wrong_key = access is not None and isinstance(access.resolve(request), web.Response)
    if wrong_key:
        status = 401  # credentials that match nothing: the spec's 401
    elif isinstance(body, dict) and "success" in body:
        return None  # already in this surface's envelope
    kept = {k: v for k, v in headers.items() if k in _KEPT_HEADERS or k.startswith("X-RateLimit")}
    code = None
    if status == 404:  # the routes answer for sessions themselves: this path matched no route
        code = _UNKNOWN_PATH
        message = f"Unknown path: {request.method} {request.path} (no such endpoint)"
    elif status == 405:
        code = _WRONG_METHOD
    return spec_error(status, message, headers=kept, code=code)


@web.middleware
async def spec_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(PATHS):
        return await handler(request)
    if request.method == "GET" and request.path.endswith("/stream"):
        request = _with_stream_key(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        translated = _translate(request, exc.status, exc.text or "", exc.headers)
        if translated is None:
            raise
        return translated
    if isinstance(response, web.Response) and response.status >= 400:
        text = response.text if response.body is not None else ""
        translated = _translate(request, response.status, text or "", response.headers)
        return translated or response
    return response
