"""A provider that refuses every key and echoes it back in its error body, in each service's own
error shape (OpenAI, Anthropic, Ollama, embeddings, Tavily and the other search APIs), the way
some real services do; runs on loopback in its own thread, so a daemon process can call it
while the test blocks on the CLI."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web


def _presented(request: web.Request) -> str:
    """Every credential the request carried, as the service would quote it."""
    parts = [
        f"{name}: {request.headers[name]}"
        for name in ("Authorization", "x-api-key", "X-Subscription-Token", "X-API-KEY")
        if name in request.headers
    ]
    return "; ".join(parts) or "no credentials"


async def _refuse(request: web.Request) -> web.Response:
    await request.read()
    seen = _presented(request)
    bare = seen.split(": ", 1)[-1].removeprefix("Bearer ")
    path = request.path
    body: dict[str, Any]
    if path.startswith("/v1/messages"):  # Anthropic
        body = {"type": "error", "error": {"type": "authentication_error", "message": seen}}
    elif path.startswith("/api/"):  # Ollama
        body = {"error": f"unauthorized ({seen}); key was {bare}"}
    elif path.startswith("/v1/"):  # OpenAI chat, models and embeddings
        body = {
            "error": {
                "message": f"Incorrect API key provided: {seen}. Your key {bare} is wrong.",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        }
    else:  # the search APIs
        body = {"detail": {"error": f"Unauthorized: {seen} (key {bare})"}}
    return web.json_response(body, status=401)


class LeakyServer:
    """Start with `start()` (returns the base URL), stop with `stop()`."""

    def __init__(self) -> None:
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self.url

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", _refuse)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = self._runner.server
        assert server is not None
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
