"""Ollama and Anthropic give a finished stream's connection back, as openai does: the next chat
skips the connect (and the TLS handshake of a remote API); a stream that is cut, reports an error,
is stopped or cancelled, or will not end, closes its connection instead of poisoning the pool."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from aiohttp import ClientResponse

from localresearch.errors import ProviderError
from localresearch.providers.anthropic import AnthropicProvider
from localresearch.providers.base import ChatRequest, Message, ProviderOptions, TextChunk, Usage
from localresearch.providers.http import HTTPProvider, release
from localresearch.providers.ollama import OllamaProvider
from tests.fakes.servers import (
    FakeServer,
    Reply,
    anthropic_error,
    anthropic_stream,
    json_reply,
    ollama_line,
    ollama_stream,
)


@dataclass(frozen=True)
class Wire:
    """What a test needs of one wire format: the provider, its path, and replies to script."""

    provider: type[HTTPProvider]
    path: str
    content_type: str
    chunks: Callable[[list[str], bool], list[bytes | float]]  # texts, finished?
    error: bytes  # a complete in-stream error report

    def reply(
        self, texts: list[str], *, done: bool = True, cut: bool = False, end_after: float = 0.0
    ) -> Reply:
        """`end_after`: seconds between the last event and the end of the body, as when a real
        server's chunked terminator comes in a later packet than the event before it."""
        chunks = self.chunks(texts, done) + ([end_after] if end_after else [])
        return Reply(chunks=chunks, content_type=self.content_type, cut=cut)


OLLAMA = Wire(
    OllamaProvider,
    "/api/chat",
    "application/x-ndjson",
    lambda texts, done: ollama_stream(texts, done=done),
    ollama_line({"error": "an unknown error was encountered while running the model"}),
)
ANTHROPIC = Wire(
    AnthropicProvider,
    "/v1/messages",
    "text/event-stream",
    lambda texts, stop: anthropic_stream(texts, stop=stop),
    f"event: error\ndata: {json.dumps(anthropic_error('overloaded_error', 'Busy'))}\n\n".encode(),
)
WIRES = pytest.mark.parametrize("wire", [OLLAMA, ANTHROPIC], ids=["ollama", "anthropic"])


@pytest.fixture
def released(wire: Wire, monkeypatch: pytest.MonkeyPatch) -> list[ClientResponse]:
    """The responses a provider handed back to the pool: finished streams, and nothing else."""
    module = sys.modules[wire.provider.__module__]
    calls: list[ClientResponse] = []

    async def spy(response: ClientResponse) -> None:
        calls.append(response)
        await release(response)

    monkeypatch.setattr(module, "release", spy)
    return calls


@pytest.fixture
async def provider(wire: Wire, fake_server: FakeServer) -> AsyncIterator[HTTPProvider]:
    options = ProviderOptions(base_url=fake_server.url, api_key="k", model="m", max_retries=0)
    instance = wire.provider(options)
    yield instance
    await instance.close()


def _request() -> ChatRequest:
    return ChatRequest(messages=[Message("user", "hi")])


async def _text(provider: HTTPProvider) -> str:
    items = [item async for item in provider.stream(_request())]
    assert isinstance(items[-1], Usage)
    return "".join(i.text for i in items if isinstance(i, TextChunk))


def _connections(server: FakeServer) -> list[int]:
    return [seen.connection for seen in server.requests]


async def _next_chat_on_a_new_connection(
    server: FakeServer, provider: HTTPProvider, text: str
) -> None:
    """The first chat's connection was closed, not kept for the pool: the next one opens
    another and works."""
    await _until_disconnected(server)
    assert await _text(provider) == text
    assert _connections(server) == [1, 2]


async def _until_disconnected(server: FakeServer, count: int = 1) -> None:
    for _ in range(100):
        if server.disconnects >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the server saw {server.disconnects} disconnects, expected {count}")


@WIRES
async def test_finished_streams_reuse_one_connection(
    wire: Wire, fake_server: FakeServer, provider: HTTPProvider, released: list[ClientResponse]
) -> None:
    fake_server.queue(wire.path, *(wire.reply([f"hello {n}"], end_after=0.05) for n in range(3)))
    assert [await _text(provider) for _ in range(3)] == ["hello 0", "hello 1", "hello 2"]
    assert _connections(fake_server) == [1, 1, 1]
    assert fake_server.completed == 3
    assert len(released) == 3


@WIRES
async def test_a_cut_stream_closes_and_the_next_chat_works(
    wire: Wire, fake_server: FakeServer, provider: HTTPProvider, released: list[ClientResponse]
) -> None:
    fake_server.queue(
        wire.path,
        wire.reply(["half"], done=False, cut=True),
        wire.reply(["whole"], end_after=0.05),
        wire.reply(["again"]),
    )
    with pytest.raises(ProviderError, match=f"{wire.provider.id}: "):
        await _text(provider)
    assert await _text(provider) == "whole"
    assert await _text(provider) == "again"
    assert _connections(fake_server) == [1, 2, 2]  # a fresh one after the cut, then kept
    assert len(released) == 2


@WIRES
async def test_an_error_in_an_open_stream_closes_its_connection(
    wire: Wire, fake_server: FakeServer, provider: HTTPProvider, released: list[ClientResponse]
) -> None:
    chunks = [*wire.chunks(["a"], False), wire.error, 5.0, b"\n"]  # the body is not over yet
    fake_server.queue(wire.path, Reply(chunks=chunks, content_type=wire.content_type))
    fake_server.queue(wire.path, wire.reply(["fine"]))
    with pytest.raises(ProviderError, match="stream error"):
        await _text(provider)
    await _next_chat_on_a_new_connection(fake_server, provider, "fine")
    assert len(released) == 1


@WIRES
async def test_a_whole_body_with_an_unfinished_reply_is_an_error_and_harmless(
    wire: Wire, fake_server: FakeServer, provider: HTTPProvider, released: list[ClientResponse]
) -> None:
    """The HTTP body ended cleanly, so aiohttp may keep its connection; the next chat works."""
    fake_server.queue(
        wire.path,
        wire.reply(["half"], done=False),
        Reply(chunks=[*wire.chunks(["a"], False), wire.error], content_type=wire.content_type),
        wire.reply(["whole"]),
    )
    with pytest.raises(ProviderError, match="ended before the reply was complete"):
        await _text(provider)
    with pytest.raises(ProviderError, match="stream error"):
        await _text(provider)
    assert await _text(provider) == "whole"
    assert fake_server.completed == 3
    assert len(released) == 1


@WIRES
async def test_an_http_error_body_is_read_and_its_connection_kept(
    wire: Wire, fake_server: FakeServer, provider: HTTPProvider, released: list[ClientResponse]
) -> None:
    fake_server.queue(wire.path, json_reply({"error": "model not found"}, 404), wire.reply(["ok"]))
    with pytest.raises(ProviderError, match="HTTP 404: model not found"):
        await _text(provider)
    assert await _text(provider) == "ok"
    assert _connections(fake_server) == [1, 1]  # the whole error body was read: reusable
    assert len(released) == 1


def _paused(wire: Wire) -> Reply:
    """A reply that stops for 5 s after its first text."""
    chunks = wire.chunks(["first", "second"], True)
    at = next(i for i, chunk in enumerate(chunks) if isinstance(chunk, bytes) and b"first" in chunk)
    return Reply(chunks=[*chunks[: at + 1], 5.0, *chunks[at + 1 :]], content_type=wire.content_type)


@WIRES
async def test_a_stream_stopped_early_closes_its_connection(
    wire: Wire, fake_server: FakeServer, provider: HTTPProvider, released: list[ClientResponse]
) -> None:
    fake_server.queue(wire.path, _paused(wire), wire.reply(["next"]))
    stream = provider.stream(_request())
    assert await anext(aiter(stream)) == TextChunk("first")
    await stream.aclose()  # type: ignore[attr-defined]  # the user stopped the answer
    await _next_chat_on_a_new_connection(fake_server, provider, "next")
    assert fake_server.completed == 1
    assert len(released) == 1


@WIRES
async def test_a_cancelled_stream_closes_its_connection(
    wire: Wire, fake_server: FakeServer, provider: HTTPProvider, released: list[ClientResponse]
) -> None:
    fake_server.queue(wire.path, _paused(wire), wire.reply(["next"]))
    first = asyncio.Event()

    async def consume() -> None:
        async for item in provider.stream(_request()):
            if isinstance(item, TextChunk):
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()  # e.g. the client hung up: cancelled while waiting for more output
    with pytest.raises(asyncio.CancelledError):
        await task
    await _next_chat_on_a_new_connection(fake_server, provider, "next")
    assert len(released) == 1


@WIRES
async def test_a_server_that_keeps_sending_after_the_end_is_closed(
    wire: Wire, fake_server: FakeServer, provider: HTTPProvider, released: list[ClientResponse]
) -> None:
    chunks = [*wire.chunks(["x"], True), 2.0, b"\n"]  # the body goes on after the last event
    fake_server.queue(wire.path, Reply(chunks=chunks, content_type=wire.content_type))
    fake_server.queue(wire.path, wire.reply(["y"]))
    assert await _text(provider) == "x"  # the reply is whole: only the connection is dropped
    await _next_chat_on_a_new_connection(fake_server, provider, "y")
    assert len(released) == 2


@WIRES
async def test_a_stream_cancelled_while_draining_closes_its_connection(
    wire: Wire,
    fake_server: FakeServer,
    provider: HTTPProvider,
    released: list[ClientResponse],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chunks = [*wire.chunks(["x"], True), 2.0, b"\n"]  # the end of the body is slow to come
    fake_server.queue(wire.path, Reply(chunks=chunks, content_type=wire.content_type))
    fake_server.queue(wire.path, wire.reply(["y"]))
    module = sys.modules[wire.provider.__module__]
    spy = module.release
    draining = asyncio.Event()

    async def announced(response: ClientResponse) -> None:
        draining.set()
        await spy(response)

    monkeypatch.setattr(module, "release", announced)
    task = asyncio.create_task(_text(provider))
    await asyncio.wait_for(draining.wait(), 5)
    task.cancel()  # cancelled while the rest of the body is read for the pool
    with pytest.raises(asyncio.CancelledError):
        await task
    await _next_chat_on_a_new_connection(fake_server, provider, "y")
    assert len(released) == 2
