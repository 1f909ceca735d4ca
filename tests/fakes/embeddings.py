"""An embeddings server speaking Ollama's POST /api/embed and OpenAI's POST /v1/embeddings wire
formats on loopback, in its own thread (embedders block, so the test calls them directly). It
notes each TCP connection, so a test can see whether the client pools them, and can stall."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from typing import Any

from aiohttp import web

KEY = "sk-embedtest-0123456789"


def vector(text: str) -> list[float]:
    """A deterministic 4-dimensional vector for `text`."""
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 255 for b in digest[:4]]


class EmbeddingsServer:
    """Start with `start()` (returns the base URL), stop with `stop()`."""

    def __init__(self) -> None:
        self.url = ""
        self.connections: set[tuple[str, int]] = set()
        self.requests = 0
        self.stall = 0.0  # seconds to wait before answering
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _seen(self, request: web.Request) -> Any:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.connections.add((str(peer[0]), int(peer[1])))
        self.requests += 1
        if self.stall:
            await asyncio.sleep(self.stall)
        return await request.json()

    async def _ollama(self, request: web.Request) -> web.Response:
        body = await self._seen(request)
        return web.json_response({"embeddings": [vector(t) for t in body["input"]]})

    async def _openai(self, request: web.Request) -> web.Response:
        body = await self._seen(request)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            quoted = request.headers.get("Authorization", "")
            error = {"message": f"Incorrect API key provided: {quoted}", "type": "invalid"}
            return web.json_response({"error": error}, status=401)
        data = [{"index": i, "embedding": vector(t)} for i, t in enumerate(body["input"])]
        return web.json_response({"object": "list", "data": data})

    def start(self) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self.url

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/embed", self._ollama)
        app.router.add_post("/v1/embeddings", self._openai)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def stop(self) -> None:
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
