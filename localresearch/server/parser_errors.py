"""What aiohttp's HTTP parser refuses (a URL over the line limit, a malformed method, broken
framing) answered in the daemon's JSON envelope instead of aiohttp's text/plain page.

aiohttp answers these before any middleware runs and offers no hook for them (aio-libs/aiohttp
#3287), so the public `RequestHandler.handle_error` is wrapped once per process: it still logs
and closes the connection as before; only the response it returns changes."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import http_exceptions, web

_INSTALLED = "_localresearch_envelope"


def _refusal(status: int, exc: BaseException | None) -> tuple[int, str, str]:
    """(status, code, message) for a parser refusal."""
    if isinstance(exc, http_exceptions.LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else "the limit"
        return (
            414,
            "uri_too_long",
            f"Request line or header longer than {limit} bytes; send long searches as "
            "POST /api/memory/search with a JSON body",
        )
    if isinstance(exc, http_exceptions.BadHttpMethod):
        return 400, "invalid_request", "Malformed HTTP method"
    if status == 500:
        return 500, "internal_error", "Internal error (details are in the daemon log)"
    if isinstance(exc, http_exceptions.HttpProcessingError) and exc.code == 413:
        return 413, "payload_too_large", "Request too large"
    return 400, "invalid_request", "Malformed HTTP request"


def install() -> None:
    """Wrap `web.RequestHandler.handle_error` (idempotent)."""
    original = web.RequestHandler.handle_error
    if getattr(original, _INSTALLED, False):
        return

    def handle_error(
        self: web.RequestHandler,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        plain = original(self, request, status, exc, message)  # logs; raises if output began
        code_status, code, text = _refusal(status, exc)
        body = json.dumps({"error": {"code": code, "message": text}})
        response = web.Response(status=code_status, text=body, content_type="application/json")
        response.force_close()
        del plain
        return response

    setattr(handle_error, _INSTALLED, True)
    web.RequestHandler.handle_error = handle_error  # type: ignore[method-assign]
