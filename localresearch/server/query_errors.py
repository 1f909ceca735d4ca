"""The query API's error envelope: {"detail": message, "error": {"code", "message"}} (FastAPI's
`detail`, which the spec's clients read, and the daemon's own `error`), on every error answer
of its paths: its routes' own (`envelope`) and those made before a route runs (`with_detail`:
the router's 404 and 405, the guard, a start still in progress)."""

from __future__ import annotations

import functools
import json

from aiohttp import web

from localresearch.config.loader import ConfigError
from localresearch.errors import LocalResearchError
from localresearch.server.errors import CODE_BY_STATUS, STATUS_BY_CODE, APIError, Handler
from localresearch.server.keys import MAX_BODY

# The query API's paths: these and everything under them (`/query/a/b` is its unknown path).
QUERY_PATHS = frozenset({"/query", "/metrics", "/config", "/capabilities"})
# Not copied from an answer being rewritten: its body's own.
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})


def on_query_path(path: str) -> bool:
    return "/" + path[1:].partition("/")[0] in QUERY_PATHS


class QueryAPIError(LocalResearchError):
    """An error with a status the daemon's own codes lack (410 Gone for a removed version)."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message, code=code)
        self.status = status


def query_error(
    code: str, message: str, status: int | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    from localresearch.api.query import query_envelope

    return web.json_response(
        query_envelope(code, message),
        status=status or STATUS_BY_CODE.get(code, 500),
        headers=headers,
    )


def envelope(handler: Handler) -> Handler:
    """Answer every refusal of `handler` in the query API's envelope."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except QueryAPIError as exc:
            return query_error(exc.code, exc.message, exc.status)
        except LocalResearchError as exc:
            return query_error(exc.code, exc.message)
        except ConfigError as exc:
            where = f"{exc.key}: " if exc.key else ""
            return query_error("invalid_request", f"{where}{exc.message}")
        except APIError as exc:
            try:
                error = json.loads(exc.text or "{}")["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": CODE_BY_STATUS.get(exc.status, "invalid_request"),
                         "message": exc.reason}  # fmt: skip
            return query_error(error["code"], error["message"], exc.status)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = CODE_BY_STATUS.get(exc.status, "invalid_request")
            message = exc.reason or "HTTP error"
            if exc.status == 413:
                limit = request.app.get(MAX_BODY, "the configured limit")
                message = f"Request body too large (limit: {limit} bytes)"
            return query_error(code, message, exc.status)

    return wrapped


def with_detail(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """An error answer on the query API's paths in its envelope, whoever made it; its status
    and headers (`Allow`, `Retry-After`, `X-RateLimit-*`, `X-Request-Id`) kept."""
    if (
        response.status < 400
        or not isinstance(response, web.Response)
        or response.prepared
        or not on_query_path(request.path)
    ):
        return response
    body = response.body
    try:
        data = json.loads(body) if isinstance(body, (bytes, bytearray)) and body else None
    except ValueError:
        data = None
    if isinstance(data, dict) and "detail" in data:
        return response  # already in this surface's envelope
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        code, message = str(error.get("code", "")), error["message"]
    else:
        code, message = "", response.text or response.reason or "HTTP error"
    code = code or CODE_BY_STATUS.get(response.status, "invalid_request")
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _BODY_HEADERS}
    return query_error(code, message, response.status, headers)
