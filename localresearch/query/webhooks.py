"""Delivering a finished query's result to webhooks: POST, retried with exponential backoff."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

RETRIES = 3  # after the first attempt: 4 attempts in all
MAX_URL_CHARS = 2048


def webhook_problem(url: object) -> str | None:
    """Why a webhook URL is refused (only absolute http and https URLs with a host), or None."""
    if not isinstance(url, str) or not url:
        return "expected an http:// or https:// URL"
    if len(url) > MAX_URL_CHARS:
        return f"expected a URL of at most {MAX_URL_CHARS} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return f"expected an http:// or https:// URL, got {shown(url)!r}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http:// or https:// URL, got {shown(url)!r}"
    if any(c in url for c in "\r\n\t ") or "\x00" in url:
        return "expected a URL without whitespace or control characters"
    return None


def shown(url: str) -> str:
    """A URL as logs and GET /config may show it: no user, password, query or fragment
    (webhook URLs often carry their token there)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    secret = parts.username or parts.password or parts.query or parts.fragment
    netloc = ("***@" if parts.username or parts.password else "") + host + port
    path = parts.path + ("?***" if parts.query else "")
    return urlunsplit((parts.scheme, netloc, path, "", "")) if secret else url[:200]


class WebhookSender:
    """One aiohttp session for every delivery; a failure is logged, never raised."""

    def __init__(self, timeout: float, backoff: float) -> None:
        self.timeout = timeout
        self.backoff = backoff
        self._session: Any = None
        self._tasks: set[asyncio.Task[bool]] = set()
        self.delivered = 0
        self.failed = 0

    def send(self, urls: list[str], payload: dict[str, Any]) -> list[asyncio.Task[bool]]:
        """Start delivering to each URL in the background; the caller does not wait."""
        started = []
        for url in dict.fromkeys(urls):
            task = asyncio.create_task(self.deliver(url, payload), name="webhook")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        return started

    async def deliver(self, url: str, payload: dict[str, Any]) -> bool:
        """POST with up to RETRIES retries on network errors and non-2xx answers."""
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), trust_env=False
            )
        problem = ""
        for attempt in range(RETRIES + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                async with self._session.post(url, json=payload, allow_redirects=False) as reply:
                    if 200 <= reply.status < 300:
                        self.delivered += 1
                        return True
                    problem = f"HTTP {reply.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                problem = type(exc).__name__
        self.failed += 1
        log.warning(
            "webhook %s failed after %d attempts (%s); the query's result is unaffected",
            shown(url), RETRIES + 1, problem,
        )  # fmt: skip
        return False

    async def close(self, grace: float = 2.0) -> None:
        """Let deliveries in progress finish briefly, then close the session."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
            for task in list(self._tasks):
                task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None
