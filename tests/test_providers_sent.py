"""HTTP providers say when their request has left for the model (`ChatRequest.on_sent`): the
daemon writes to its own client only after that, so that the model starts as early as it can."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from localresearch.errors import ProviderError
from localresearch.providers.anthropic import AnthropicProvider
from localresearch.providers.base import ChatRequest, Message, ProviderOptions, TextChunk
from localresearch.providers.http import HTTPProvider
from localresearch.providers.ollama import OllamaProvider
from localresearch.providers.openai import OpenAIProvider
from tests.conftest import free_port
from tests.fakes.servers import FakeServer, Reply, anthropic_stream, ollama_stream, openai_stream

WIRES = pytest.mark.parametrize(
    ("kind", "path", "reply"),
    [
        (OpenAIProvider, "/v1/chat/completions", lambda: Reply(chunks=openai_stream(["a", "b"]))),
        (OllamaProvider, "/api/chat", lambda: Reply(chunks=ollama_stream(["a", "b"]))),
        (AnthropicProvider, "/v1/messages", lambda: Reply(chunks=anthropic_stream(["a", "b"]))),
    ],
    ids=["openai", "ollama", "anthropic"],
)


@WIRES
async def test_on_sent_is_called_once_before_the_answer(
    fake_server: FakeServer, kind: type[HTTPProvider], path: str, reply: Callable[[], Reply]
) -> None:
    fake_server.queue(path, reply(), reply())
    provider = kind(ProviderOptions(base_url=fake_server.url, api_key="k", model="m"))
    try:
        for chat in range(2):  # a new connection, then the pooled one
            sent: list[int] = []
            request = ChatRequest(messages=[Message("user", "hi")], on_sent=partial(sent.append, 1))
            texts = []
            async for item in provider.stream(request):
                if isinstance(item, TextChunk):
                    assert sent == [1]  # told before the first token, and once only
                    texts.append(item.text)
            assert texts == ["a", "b"] and sent == [1]
            assert len(fake_server.requests) == chat + 1
    finally:
        await provider.close()


async def test_on_sent_is_not_called_when_the_request_cannot_leave() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    provider = OpenAIProvider(ProviderOptions(base_url=url, model="m", max_retries=0))
    sent: list[int] = []
    request = ChatRequest(messages=[Message("user", "hi")], on_sent=partial(sent.append, 1))
    try:
        with pytest.raises(ProviderError, match="cannot connect"):
            async for _ in provider.stream(request):
                pass
    finally:
        await provider.close()
    assert sent == []
