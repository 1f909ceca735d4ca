"""The HTTP embeddings providers (Ollama, OpenAI-compatible) on aiohttp, the client stack of the
chat providers, web search and webhooks: one pooled session, bounded timeouts, and errors that
carry the provider's words with every key masked.

Embedders are called from worker threads and answer synchronously, so each one runs its session
on a private event loop in a daemon thread and waits for the answer there."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from localresearch.errors import ProviderError

TIMEOUT_S = 60.0  # one request, connect to last byte (a large batch on a CPU-only server)
CONNECT_TIMEOUT_S = 10.0
_T = TypeVar("_T")


def error_message(body: bytes) -> str:
    """The provider's own error text from a JSON error body (OpenAI and Ollama shapes)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:200]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:200]
        return str(error)[:200]
    return str(data)[:200]


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()


class _LoopThread:
    """An event loop running in a daemon thread; re-created in a forked child."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run `coro` on the loop and wait for its result (never call from the loop itself)."""
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                thread = threading.Thread(target=_serve, args=(self._loop,), name=self.name)
                thread.daemon = True
                thread.start()
            loop = self._loop
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coro, loop)
        return future.result()

    def alive(self) -> bool:
        """Whether this process's loop is running (not one inherited through a fork)."""
        with self._lock:
            loop = self._loop
        return loop is not None and self._pid == os.getpid() and not loop.is_closed()

    def stop(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None and self._pid == os.getpid() and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)


class HTTPEmbedder:
    """POSTs JSON to an embeddings endpoint; errors become ProviderError with the reason."""

    def __init__(self, name: str, url: str, headers: dict[str, str] | None = None) -> None:
        self.name = name
        self.url = url
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        host = urlsplit(url).hostname or ""
        # A local endpoint is never reached through the environment's HTTP proxy; a remote one
        # is, as the standard library's client did before.
        self._trust_env = host not in ("localhost", "127.0.0.1", "::1")
        self._runner = _LoopThread(f"embeddings {name}")
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(
                total=TIMEOUT_S, connect=CONNECT_TIMEOUT_S, sock_connect=CONNECT_TIMEOUT_S
            )
            self._session = aiohttp.ClientSession(timeout=timeout, trust_env=self._trust_env)
        return self._session

    async def _apost(self, payload: dict[str, Any]) -> Any:
        try:
            async with self._client().post(self.url, json=payload, headers=self.headers) as r:
                body = await r.read()
                status = r.status
        except TimeoutError:
            raise ProviderError(
                f"embeddings endpoint {self.url} did not answer within {TIMEOUT_S:g} s"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise ProviderError(
                f"cannot reach embeddings endpoint {self.url}: {exc.os_error}"
            ) from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"cannot reach embeddings endpoint {self.url}: {exc}") from None
        if status >= 400:
            # ProviderError masks every key the daemon holds and anything shaped like one.
            raise ProviderError(f"embeddings endpoint answered {status}: {error_message(body)}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ProviderError(f"embeddings endpoint sent invalid JSON: {exc}") from None

    def _post(self, payload: dict[str, Any]) -> Any:
        return self._runner.run(self._apost(payload))

    def close(self) -> None:
        """Release the pooled connections and the loop's thread."""
        session, self._session = self._session, None
        if session is not None and self._runner.alive():
            self._runner.run(session.close())
        self._runner.stop()

    def embed(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError


def check_vectors(vectors: Any, count: int) -> list[list[float]]:
    """The vectors as floats, or a ProviderError saying what is wrong with the answer."""
    if not isinstance(vectors, list) or len(vectors) != count:
        got = len(vectors) if isinstance(vectors, list) else 0
        raise ProviderError(f"embeddings endpoint returned {got} of {count} vectors")
    try:
        return [[float(x) for x in vector] for vector in vectors]
    except (TypeError, ValueError) as exc:
        raise ProviderError(f"embeddings endpoint returned a malformed vector: {exc}") from None


class OllamaEmbedder(HTTPEmbedder):
    """Ollama's POST /api/embed: {"model", "input": [...]} → {"embeddings": [[...]]}."""

    def embed(self, texts: list[str]) -> list[list[float]]:
        data = self._post({"model": self.name.split("/", 1)[1], "input": texts})
        return check_vectors(data.get("embeddings") if isinstance(data, dict) else None, len(texts))


class OpenAIEmbedder(HTTPEmbedder):
    """OpenAI-compatible POST /embeddings: {"data": [{"embedding": [...], "index": i}]}."""

    def embed(self, texts: list[str]) -> list[list[float]]:
        data = self._post({"model": self.name.split("/", 1)[1], "input": texts})
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ProviderError("embeddings endpoint answered without a 'data' list")
        try:
            ordered = sorted(items, key=lambda item: int(item.get("index", 0)))
        except (TypeError, ValueError):
            raise ProviderError("embeddings endpoint answered with a bad 'index'") from None
        return check_vectors([item.get("embedding") for item in ordered], len(texts))
