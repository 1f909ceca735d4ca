"""Browser sign-in: one-time tokens from `research web`, exchanged for an HttpOnly cookie."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from localresearch.access.roles import Principal

TOKEN_SECONDS = 120.0  # a sign-in link works once, within this time
SESSION_SECONDS = 7 * 24 * 3600
MAX_PENDING = 64


def cookie_name(port: int) -> str:
    """Cookies are shared by all ports of a host: one name per daemon port keeps them apart."""
    return f"localresearch_{port}"


class WebSessions:
    """Issues single-use tokens (kept in memory) and signs session cookies with a secret kept in
    the state folder, so a signed-in page stays signed in across daemon restarts."""

    def __init__(self, secret_file: Path, port: int) -> None:
        self.secret = _load_secret(secret_file)
        self.cookie = cookie_name(port)
        self._pending: dict[bytes, float] = {}

    def issue(self) -> str:
        """A new one-time token for a sign-in link."""
        now = time.monotonic()
        self._pending = {k: t for k, t in self._pending.items() if t > now}
        while len(self._pending) >= MAX_PENDING:
            self._pending.pop(next(iter(self._pending)))
        token = secrets.token_urlsafe(32)
        self._pending[_digest(token)] = now + TOKEN_SECONDS
        return token

    def redeem(self, token: str) -> str | None:
        """The session cookie's value for a valid unused token (which is used up), else None."""
        expires = self._pending.pop(_digest(token), None)
        if expires is None or expires < time.monotonic():
            return None
        until = int(time.time() + SESSION_SECONDS)
        return f"{until}.{self._sign(until)}"

    def valid(self, value: str) -> bool:
        until, _, signature = value.partition(".")
        if not until.isdigit() or int(until) < time.time():
            return False
        return hmac.compare_digest(signature.encode(), self._sign(int(until)).encode())

    def _sign(self, until: int) -> str:
        return hmac.new(self.secret, f"session:{until}".encode(), hashlib.sha256).hexdigest()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


def _load_secret(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except OSError:
        pass
    data = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return data


WEB_SESSIONS = web.AppKey("web_sessions", WebSessions)


def cookie_resolver(owner: Principal) -> Callable[[web.Request], Principal | None]:
    """The access layer's resolver for the page: a valid sign-in cookie stands for the owner."""

    def resolve(request: web.Request) -> Principal | None:
        return owner if session_ok(request) else None

    return resolve


def session_ok(request: web.Request) -> bool:
    """Does the request carry a valid sign-in cookie? (a credential resolver for the guard)"""
    sessions = request.app.get(WEB_SESSIONS)
    if sessions is None:
        return False
    value = request.cookies.get(sessions.cookie)
    return value is not None and sessions.valid(value)
