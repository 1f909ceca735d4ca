"""Protection for a daemon on localhost: Host and Origin checks, and an optional API key."""

from __future__ import annotations

import hmac
import os
from urllib.parse import urlsplit

from aiohttp import web

from localresearch.config.schema import APIConfig, ServerConfig
from localresearch.loopback import is_loopback_host
from localresearch.server.errors import error_response
from localresearch.server.websession import session_ok

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def split_host(value: str) -> tuple[str, int | None]:
    """'127.0.0.1:8080' → ('127.0.0.1', 8080); handles bracketed IPv6."""
    parts = urlsplit(f"//{value}")
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or "", port)


class Guard:
    """Decides per request; built once from the config so the hot path does no parsing."""

    def __init__(self, server: ServerConfig, api: APIConfig, port: int) -> None:
        self.port = port
        self.allowed_hosts = {h.lower() for h in server.allowed_hosts}
        if not is_loopback_host(server.bind) and server.bind not in ("0.0.0.0", "::"):
            self.allowed_hosts.add(server.bind.lower())
        self.allowed_origins = {o.rstrip("/").lower() for o in server.allowed_origins}
        key = os.environ.get(api.key_env, "") if api.key_env else ""
        self.api_key = key.encode() if key else None
        self._host_cache: dict[str, bool] = {}

    def host_allowed(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        known = self._host_cache.get(host_header)
        if known is None:
            host, _port = split_host(host_header)
            known = is_loopback_host(host) or host.lower() in self.allowed_hosts
            if len(self._host_cache) < 256:  # bounded: Host values are attacker-chosen
                self._host_cache[host_header] = known
        return known

    def origin_allowed(self, origin: str) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.allowed_origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return False
        return is_loopback_host(parts.hostname) and port == self.port

    def key_ok(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        presented = request.headers.get("X-API-Key", "")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            presented = auth[7:].strip()
        return hmac.compare_digest(presented.encode(), self.api_key)


GUARD = web.AppKey("guard", Guard)

# Without a key: health, and the page's own files (they hold no data; the page asks for a key).
OPEN_PATHS = frozenset({"/health", "/", "/web/signin"})


def _open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith("/static/")


def refusal(request: web.Request) -> web.Response | None:
    """The answer to a request the guard refuses (DNS rebinding: a foreign Host; a cross-site
    write or WebSocket upgrade; a missing API key), or None to let it through."""
    guard = request.app[GUARD]
    if not guard.host_allowed(request.headers.get("Host")):
        return error_response(
            "forbidden",
            "Host header not allowed: this daemon answers only to loopback names "
            "(add the name to server.allowed_hosts to allow it)",
        )
    headers = request.headers
    upgrade = headers.get("Upgrade")
    if request.method not in SAFE_METHODS or (upgrade and upgrade.lower() == "websocket"):
        origin = headers.get("Origin")
        if origin is not None and not guard.origin_allowed(origin):
            return error_response(
                "forbidden", f"Cross-site request refused (Origin {origin!r} is not this daemon)"
            )
        if origin is None and headers.get("Sec-Fetch-Site") == "cross-site":
            return error_response("forbidden", "Cross-site request refused")
    if (
        guard.api_key is not None
        and not _open_path(request.path)
        and not guard.key_ok(request)
        and not session_ok(request)
    ):
        return error_response(
            "unauthorized", "Missing or wrong API key (send Authorization: Bearer <key>)"
        )
    return None
