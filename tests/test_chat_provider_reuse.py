"""A finished model stream gives its connection back: the next chat skips the connect (and, for a
remote API, the TLS handshake); a stream stopped early or cut does not leave a broken one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator

import pytest
from aiohttp import web

from localresearch.errors import ProviderError
from localresearch.providers.base import ChatRequest, Message, ProviderOptions, TextChunk
from localresearch.providers.openai import OpenAIProvider


def _frame(delta: dict[str, object], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return f"data: {json.dumps({'choices': [choice]})}\n\n".encode()


class Model:
    """An OpenAI-format server that notes which connection (client port) each request used."""

    def __init__(self) -> None:
        self.peers: list[int] = []
        self.cut = False
        self.pause = 0.0  # seconds between the first chunk and the rest

    async def completions(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        assert request.transport is not None
        self.peers.append(request.transport.get_extra_info("peername")[1])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_frame({"content": "hello"}))
        if self.cut:
            request.transport.close()
            return response
        if self.pause:
            await asyncio.sleep(self.pause)
        await response.write(_frame({}, "stop"))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


@pytest.fixture
async def model() -> AsyncIterator[tuple[Model, str]]:
    server = Model()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.completions)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield server, f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


def _request() -> ChatRequest:
    return ChatRequest(messages=[Message("user", "hi")])


async def test_finished_streams_reuse_one_connection(model: tuple[Model, str]) -> None:
    server, url = model
    provider = OpenAIProvider(ProviderOptions(base_url=url, model="m", max_retries=0))
    try:
        for _ in range(3):
            items = [item async for item in provider.stream(_request())]
            assert [i.text for i in items if isinstance(i, TextChunk)] == ["hello"]
    finally:
        await provider.close()
    assert len(server.peers) == 3
    assert len(set(server.peers)) == 1


async def test_a_stream_stopped_early_does_not_poison_the_pool(model: tuple[Model, str]) -> None:
    server, url = model
    provider = OpenAIProvider(ProviderOptions(base_url=url, model="m", max_retries=0))
    server.pause = 0.2
    try:
        stream = provider.stream(_request())
        assert isinstance(stream, AsyncGenerator)
        first = await stream.__anext__()
        assert isinstance(first, TextChunk)
        await stream.aclose()  # e.g. the user cancelled the answer: that connection is closed
        server.pause = 0.0
        items = [item async for item in provider.stream(_request())]
        assert [i.text for i in items if isinstance(i, TextChunk)] == ["hello"]
    finally:
        await provider.close()
    assert len(set(server.peers)) == 2


async def test_a_cut_stream_is_an_error_and_the_next_one_works(model: tuple[Model, str]) -> None:
    server, url = model
    provider = OpenAIProvider(ProviderOptions(base_url=url, model="m", max_retries=0))
    try:
        server.cut = True
        with pytest.raises(ProviderError):
            _ = [item async for item in provider.stream(_request())]
        server.cut = False
        items = [item async for item in provider.stream(_request())]
        assert [i.text for i in items if isinstance(i, TextChunk)] == ["hello"]
    finally:
        await provider.close()
