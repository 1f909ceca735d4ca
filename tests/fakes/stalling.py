"""An OpenAI-compatible model that stalls: it answers /v1/chat/completions with a first chunk
of the stream (or nothing at all) and then says nothing more, noting when the caller hangs up.
Runs on loopback in its own thread, so a daemon process can call it while the test blocks."""

from __future__ import annotations

import asyncio
import json
import threading
import time

from aiohttp import web


def _chunk(content: str) -> bytes:
    delta = {"role": "assistant", "content": content}
    body = {
        "id": "chatcmpl-stall",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "stall",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class StallingModel:
    """`first_chunk`: send one chunk of text before stalling (else stall before any output)."""

    def __init__(self, *, first_chunk: str = "Thinking") -> None:
        self.first_chunk = first_chunk
        self.url = ""
        self.started: list[float] = []  # when each model request arrived
        self.hung_up: list[float] = []  # when each caller closed its connection
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self.url

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._stall)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "stall"}]})

    async def _stall(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.started.append(time.monotonic())
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if self.first_chunk:
            await response.write(_chunk(self.first_chunk))
        try:
            for _ in range(1200):  # at most 60 s
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                await asyncio.sleep(0.05)
        finally:
            self.hung_up.append(time.monotonic())
        return response

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
