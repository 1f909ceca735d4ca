"""What every HTTP provider shares: one session, connect / first-token / idle timeouts, retries
with backoff that honour Retry-After, and errors that carry the provider's message, never a key."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any, ClassVar

import aiohttp

from localresearch.errors import ProviderError
from localresearch.memory.types import MemorySearcher
from localresearch.providers.base import Provider, ProviderOptions
from localresearch.redaction import redact

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 503})
MAX_RETRY_DELAY = 60.0
DRAIN_SECONDS = 0.25  # how long a finished stream may take to send the end of its body
MODELS_TIMEOUT = 5.0  # a model list slower than this does not hold a question up
MODELS_CACHE_SECONDS = 60.0
_models_cache: dict[tuple[str, str], tuple[float, Any]] = {}


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class LineReader:
    """Lines of a streamed body: the first within the first-token deadline, then each within the
    idle timeout. A provider calls `started()` once real output arrived."""

    def __init__(self, provider: HTTPProvider, response: aiohttp.ClientResponse) -> None:
        self.provider = provider
        self.response = response
        self._deadline = time.monotonic() + provider.options.first_token_timeout
        self._started = False
        self._buffer = b""

    def started(self) -> None:
        self._started = True

    def _timeout(self) -> float:
        if self._started:
            return self.provider.options.idle_timeout
        return max(0.0, self._deadline - time.monotonic())

    async def _read(self) -> bytes:
        timeout = self._timeout()
        try:
            async with asyncio.timeout(timeout):
                return await self.response.content.readany()
        except TimeoutError:
            options = self.provider.options
            if self._started:
                what, limit, name = "more output", options.idle_timeout, "idle_timeout"
            else:
                what, limit, name = (
                    "first token",
                    options.first_token_timeout,
                    "first_token_timeout",
                )
            raise ProviderError(
                f"{self.provider.id}: no {what} within {limit:g} s ({name}): a slow or busy "
                f"model needs longer; raise llm.{name} in config.toml"
            ) from None
        except aiohttp.ClientPayloadError as exc:
            raise ProviderError(f"{self.provider.id}: stream broken: {exc}") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(
                f"{self.provider.id}: connection lost: {self.provider.redact(str(exc))}"
            ) from None

    async def lines(self) -> AsyncIterator[str]:
        """Decoded lines without their ending; the last unterminated line is yielded too."""
        while True:
            while b"\n" in self._buffer:
                line, _, self._buffer = self._buffer.partition(b"\n")
                yield line.decode("utf-8", errors="replace").rstrip("\r")
            chunk = await self._read()
            if not chunk:
                if self._buffer:
                    rest, self._buffer = self._buffer, b""
                    yield rest.decode("utf-8", errors="replace").rstrip("\r")
                return
            self._buffer += chunk


async def release(response: aiohttp.ClientResponse) -> None:
    """Give a finished stream's connection back to the pool, so the next request skips the
    connect (and, for remote APIs, the TLS handshake): the rest of the body (normally just the
    end of the chunked stream) is read first; a server that keeps sending has it closed."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while await response.content.readany():
                pass
    except (TimeoutError, aiohttp.ClientError):
        response.close()
        return
    response.release()


async def _request_sent(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestChunkSentParams,
) -> None:
    """aiohttp calls this just before it writes a body chunk (the request's headers go with it)."""
    on_sent = context.trace_request_ctx
    if on_sent is not None:
        on_sent()


class HTTPProvider(Provider):
    """Base of the providers that talk to a server over HTTP."""

    default_base_url: ClassVar[str] = ""
    models_path: ClassVar[str] = ""  # the server's model list (GET), parsed by parse_models
    retry_base_delay: ClassVar[float] = 0.5
    retry_statuses: ClassVar[frozenset[int]] = RETRY_STATUSES

    def __init__(self, options: ProviderOptions, memory: MemorySearcher | None = None) -> None:
        super().__init__(options, memory)
        self._session: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return (self.options.base_url or self.default_base_url).rstrip("/")

    def headers(self) -> dict[str, str]:
        """Request headers (the key goes here and nowhere else)."""
        return {"Content-Type": "application/json"}

    def redact(self, text: str) -> str:
        key = self.options.api_key
        return redact(text.replace(key, "***") if key else text)

    def error_message(self, body: bytes) -> str:
        """The provider's own words from an error body (each wire format overrides this)."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return body.decode("utf-8", errors="replace").strip()[:500]
        return _find_message(data) or json.dumps(data)[:500]

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(
                total=None,
                connect=self.options.connect_timeout,
                sock_connect=self.options.connect_timeout,
            )
            tracing = aiohttp.TraceConfig()
            tracing.on_request_chunk_sent.append(_request_sent)
            self._session = aiohttp.ClientSession(timeout=timeout, trace_configs=[tracing])
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _fail(self, message: str) -> ProviderError:
        return ProviderError(f"{self.id}: {self.redact(message)}")

    async def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        wait: float | None = None,
        on_sent: Callable[[], None] | None = None,
        setting: str = "first_token_timeout",
    ) -> aiohttp.ClientResponse:
        """Send one request, retrying 429/503 and connection failures with backoff; the caller
        owns the (2xx) response and must close it. `on_sent` runs as the body leaves; a
        timeout names `setting`, the one that sets `wait`."""
        url = f"{self.base_url}{path}"
        attempts = max(0, self.options.max_retries) + 1
        wait = wait if wait is not None else self.options.first_token_timeout
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                async with asyncio.timeout(wait):
                    response = await self.session().request(
                        method, url, json=payload, headers=self.headers(), trace_request_ctx=on_sent
                    )
            except TimeoutError:
                raise self._fail(
                    f"no response from {url} within {wait:g} s ({setting}): raise "
                    f"llm.{setting} in config.toml for a slow or busy server"
                ) from None
            except aiohttp.ClientConnectorError as exc:
                if last:
                    raise self._fail(f"cannot connect to {self.base_url}: {exc.os_error}") from None
                await self._backoff(attempt, None, f"connect failed: {exc.os_error}")
                continue
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if last:
                    raise self._fail(f"connection to {self.base_url} failed: {exc}") from None
                await self._backoff(attempt, None, f"connection failed: {exc}")
                continue
            except aiohttp.ClientError as exc:
                raise self._fail(f"request to {url} failed: {exc}") from None
            if response.status < 400:
                return response
            body = await response.read()
            response.release()
            message = self.redact(self.error_message(body))
            if response.status in self.retry_statuses and not last:
                delay = retry_after_seconds(response.headers.get("Retry-After"))
                await self._backoff(attempt, delay, f"HTTP {response.status}: {message}")
                continue
            raise self._fail(f"HTTP {response.status}: {message}")
        raise self._fail("no attempts made")  # pragma: no cover - attempts >= 1

    async def _backoff(self, attempt: int, retry_after: float | None, why: str) -> None:
        delay = retry_after if retry_after is not None else self.retry_base_delay * 2**attempt
        delay = min(delay, MAX_RETRY_DELAY)
        log.info("%s: %s; retrying in %.2f s", self.id, self.redact(why), delay)
        await asyncio.sleep(delay)

    def parse_models(self, body: Any) -> list[str] | None:
        """The model names in the body of `models_path` (None: the body cannot tell)."""
        return None

    async def served_models(self) -> list[str] | None:
        """The server's own model list, cached for a minute; None when it cannot be had (server
        down, no such endpoint): then the request itself succeeds or fails, unchecked."""
        if not self.models_path:
            return None
        body = await self.models_body()
        return (self.parse_models(body) if body is not None else None) or None

    async def models_body(self) -> Any:
        """The body of `models_path` (None when it cannot be had), fetched at most once a
        minute: the model check and the context-size probe share it."""
        key = (self.id, self.base_url)
        cached = _models_cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < MODELS_CACHE_SECONDS:
            return cached[1]
        url = f"{self.base_url}{self.models_path}"
        body: Any = None
        try:
            async with (
                asyncio.timeout(MODELS_TIMEOUT),
                self.session().get(url, headers=self.headers()) as response,
            ):
                if response.status < 400:
                    body = json.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError, ValueError, UnicodeDecodeError) as exc:
            log.info("%s: model list from %s unavailable: %s", self.id, url, self.redact(str(exc)))
        _models_cache[key] = (time.monotonic(), body)
        return body

    async def probe_json(self, url: str) -> tuple[Any, bool]:
        """(body, answered) of a quick GET that must not hold a question up: (None, False) when
        the server did not answer, (None, True) when it answered with an error or no JSON."""
        try:
            async with (
                asyncio.timeout(MODELS_TIMEOUT),
                self.session().get(url, headers=self.headers()) as response,
            ):
                if response.status >= 400:
                    return None, True
                return json.loads(await response.read()), True
        except (ValueError, UnicodeDecodeError):
            return None, True
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("%s: %s unavailable: %s", self.id, url, self.redact(str(exc)))
            return None, False

    async def get_json(self, path: str) -> Any:
        response = await self.request(
            "GET", path, wait=self.options.connect_timeout + 20, setting="connect_timeout"
        )
        try:
            body = await response.read()
        finally:
            response.release()
        try:
            return json.loads(body)
        except ValueError:
            raise self._fail(f"malformed JSON from {path}: {body[:200]!r}") from None


def _find_message(data: Any) -> str:
    """The first human message in a JSON error body of any of the common shapes."""
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if key in data:
                found = _find_message(data[key])
                if found:
                    return found
    return ""
