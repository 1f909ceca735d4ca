"""Ollama, Anthropic and OpenAI-compatible providers against loopback servers that speak each
documented wire format: streaming, tool calls, usage, errors, 429/503 with Retry-After, cut
streams, timeouts, cancellation, and keys that never leak."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from localresearch.errors import ProviderError
from localresearch.providers.anthropic import AnthropicProvider
from localresearch.providers.base import (
    ChatRequest,
    Message,
    ProviderOptions,
    StreamItem,
    TextChunk,
    ToolCall,
    ToolSpec,
    Usage,
)
from localresearch.providers.http import HTTPProvider, retry_after_seconds
from localresearch.providers.ollama import OllamaProvider
from localresearch.providers.openai import OpenAIProvider
from tests.conftest import free_port
from tests.fakes.servers import (
    FakeServer,
    Reply,
    anthropic_error,
    anthropic_stream,
    json_reply,
    ollama_stream,
    openai_stream,
)

KEY = "sk-test-SECRET-0123456789"
TOOL = ToolSpec("memory_search", "Search notes", {"type": "object", "properties": {}})


def _request(text: str = "hi", **kw: Any) -> ChatRequest:
    return ChatRequest(messages=[Message("system", "be brief"), Message("user", text)], **kw)


def _provider(cls: type[HTTPProvider], url: str, **opts: Any) -> HTTPProvider:
    options = ProviderOptions(base_url=url, api_key=KEY, max_retries=2, **opts)
    provider = cls(options)
    provider.retry_base_delay = 0.01  # instance attribute: backoff without slowing the suite
    return provider


async def _collect(provider: HTTPProvider, request: ChatRequest | None = None) -> list[StreamItem]:
    try:
        return [item async for item in provider.stream(request or _request())]
    finally:
        await provider.close()


def _text(items: list[StreamItem]) -> str:
    return "".join(i.text for i in items if isinstance(i, TextChunk))


# -- Ollama ------------------------------------------------------------------------------------


async def test_ollama_streams_text_tools_and_usage(fake_server: FakeServer) -> None:
    call = {"name": "memory_search", "arguments": {"query": "rust"}}
    fake_server.queue(
        "/api/chat",
        Reply(
            chunks=ollama_stream(["The ", "sky"], tool_calls=[call]),
            content_type="application/x-ndjson",
        ),
    )
    provider = _provider(OllamaProvider, fake_server.url, model="llama3.2")
    items = await _collect(provider, _request(tools=[TOOL], temperature=0.0))
    assert _text(items) == "The sky"
    calls = [i for i in items if isinstance(i, ToolCall)]
    assert [(c.name, c.arguments) for c in calls] == [("memory_search", {"query": "rust"})]
    assert items[-1] == Usage(26, 4)
    sent = fake_server.requests[0].body
    assert sent["model"] == "llama3.2" and sent["stream"] is True
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent["tools"][0]["function"]["name"] == "memory_search"
    assert sent["options"]["temperature"] == 0.0


async def test_ollama_tags_and_error_body(fake_server: FakeServer) -> None:
    fake_server.queue(
        "/api/tags", json_reply({"models": [{"name": "llama3.2:latest"}, {"name": "qwen3:4b"}]})
    )
    fake_server.queue(
        "/api/chat", json_reply({"error": 'model "nope" not found, try pulling it first'}, 404)
    )
    provider = _provider(OllamaProvider, fake_server.url)
    assert await provider.list_models() == ["llama3.2:latest", "qwen3:4b"]
    with pytest.raises(ProviderError) as err:
        await _collect(provider)
    assert err.value.message == 'ollama: HTTP 404: model "nope" not found, try pulling it first'
    assert err.value.code == "provider_error"


async def test_ollama_429_honours_retry_after(fake_server: FakeServer) -> None:
    fake_server.queue(
        "/api/chat",
        json_reply({"error": "too many requests"}, 429, {"Retry-After": "1"}),
        Reply(chunks=ollama_stream(["ok"])),
    )
    provider = _provider(OllamaProvider, fake_server.url)
    started = time.monotonic()
    items = await _collect(provider)
    assert _text(items) == "ok"
    assert time.monotonic() - started >= 0.95  # waited as told, not the 0.01 s backoff
    assert len(fake_server.requests) == 2


async def test_ollama_cut_and_malformed_streams(fake_server: FakeServer) -> None:
    fake_server.queue(
        "/api/chat",
        Reply(chunks=ollama_stream(["half"], done=False), cut=True),
        Reply(chunks=ollama_stream(["half"], done=False)),  # clean EOF, no done message
        Reply(chunks=[b'{"message": {"content": "a"}, "done": false}\n', b"{not json\n"]),
        Reply(chunks=[b'{"error": "an unknown error was encountered while running the model"}\n']),
    )
    provider = _provider(OllamaProvider, fake_server.url)
    messages = []
    for _ in range(4):
        with pytest.raises(ProviderError) as err:
            await _collect(provider)
        messages.append(err.value.message)
    assert "ollama:" in messages[0] and ("broken" in messages[0] or "ended" in messages[0])
    assert "ended before the reply was complete" in messages[1]
    assert "malformed stream line" in messages[2]
    assert (
        messages[3]
        == "ollama: stream error: an unknown error was encountered while running the model"
    )


# -- Anthropic ---------------------------------------------------------------------------------


async def test_anthropic_stream_tool_use_and_headers(fake_server: FakeServer) -> None:
    tool = {"id": "toolu_1", "name": "memory_search", "input": {"query": "sqlite wal"}}
    fake_server.queue(
        "/v1/messages",
        Reply(
            chunks=anthropic_stream(["Hello", " world"], tool_use=tool),
            content_type="text/event-stream",
        ),
    )
    provider = _provider(AnthropicProvider, fake_server.url, model="claude-test")
    request = _request(tools=[TOOL])
    request.messages.append(
        Message("assistant", "", tool_calls=(ToolCall("toolu_0", "memory_search", {"query": "x"}),))
    )
    request.messages.append(Message("tool", "result", name="memory_search", tool_call_id="toolu_0"))
    items = await _collect(provider, request)
    assert _text(items) == "Hello world"
    assert [i for i in items if isinstance(i, ToolCall)] == [
        ToolCall("toolu_1", "memory_search", {"query": "sqlite wal"})
    ]
    assert items[-1] == Usage(25, 15)
    seen = fake_server.requests[0]
    assert seen.headers["x-api-key"] == KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    body = seen.body
    assert body["system"] == "be brief"
    assert body["messages"][0] == {"role": "user", "content": "hi"}
    assert body["messages"][1]["content"][0]["type"] == "tool_use"
    assert body["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_0",
        "content": "result",
    }
    assert body["tools"][0]["input_schema"] == TOOL.parameters


async def test_anthropic_errors_never_show_the_key(fake_server: FakeServer) -> None:
    fake_server.queue(
        "/v1/messages",
        json_reply(anthropic_error("authentication_error", f"invalid x-api-key {KEY}"), 401),
        json_reply(anthropic_error("overloaded_error", "Overloaded"), 529),
        json_reply(anthropic_error("overloaded_error", "Overloaded"), 529),
        json_reply(anthropic_error("overloaded_error", "Overloaded"), 529),
    )
    provider = _provider(AnthropicProvider, fake_server.url)
    with pytest.raises(ProviderError) as err:
        await _collect(provider)
    assert err.value.message == "anthropic: HTTP 401: invalid x-api-key ***"
    with pytest.raises(ProviderError) as err:
        await _collect(provider)  # 529 retried max_retries (2) times, then reported
    assert err.value.message == "anthropic: HTTP 529: Overloaded"
    assert len(fake_server.requests) == 4


async def test_anthropic_error_event_and_cut_stream(fake_server: FakeServer) -> None:
    error_event = (
        b"event: error\ndata: "
        + json.dumps(anthropic_error("overloaded_error", "Overloaded")).encode()
        + b"\n\n"
    )
    fake_server.queue(
        "/v1/messages",
        Reply(chunks=[*anthropic_stream(["Hi"], stop=False), error_event]),
        Reply(chunks=anthropic_stream(["Hi"], stop=False), cut=True),
    )
    provider = _provider(AnthropicProvider, fake_server.url)
    with pytest.raises(ProviderError, match="anthropic: stream error: Overloaded"):
        await _collect(provider)
    with pytest.raises(ProviderError, match="anthropic: "):
        await _collect(provider)


async def test_anthropic_needs_a_key() -> None:
    from localresearch.config.schema import LLMConfig
    from localresearch.providers.registry import create_provider

    with pytest.raises(ProviderError, match="needs an API key"):
        create_provider(LLMConfig(provider="anthropic", api_key_env="LR_TEST_NO_SUCH_KEY"))


# -- OpenAI-compatible (protocol fake; the real llama.cpp server has its own tests) -------------


async def test_openai_tool_call_deltas_and_key_header(fake_server: FakeServer) -> None:
    call = {"id": "call_9", "name": "read_file", "arguments": {"path": "MEMORY.md"}}
    fake_server.queue(
        "/v1/chat/completions", Reply(chunks=openai_stream(["a", "b"], tool_calls=[call]))
    )
    provider = _provider(OpenAIProvider, fake_server.url)  # no /v1 in base_url: added
    items = await _collect(provider, _request(tools=[TOOL], json_mode=True))
    assert _text(items) == "ab"
    assert ToolCall("call_9", "read_file", {"path": "MEMORY.md"}) in items
    assert items[-1] == Usage(7, 3)
    seen = fake_server.requests[0]
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.body["response_format"] == {"type": "json_object"}
    assert seen.body["stream_options"] == {"include_usage": True}


async def test_openai_503_then_success_and_error_message(fake_server: FakeServer) -> None:
    err = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}}
    fake_server.queue(
        "/v1/chat/completions",
        json_reply(err, 503),
        Reply(chunks=openai_stream(["fine"])),
        json_reply(
            {"error": {"message": "Invalid model 'x'", "type": "invalid_request_error"}}, 400
        ),
    )
    provider = _provider(OpenAIProvider, fake_server.url + "/v1")
    assert _text(await _collect(provider)) == "fine"
    with pytest.raises(ProviderError) as info:
        await _collect(provider)
    assert info.value.message == "openai: HTTP 400: Invalid model 'x'"


async def test_openai_stream_without_done_is_an_error(fake_server: FakeServer) -> None:
    fake_server.queue(
        "/v1/chat/completions",
        Reply(chunks=openai_stream(["par"], done=False)),
        Reply(chunks=[b"data: {broken\n\n"]),
    )
    provider = _provider(OpenAIProvider, fake_server.url)
    with pytest.raises(ProviderError, match="ended before the reply was complete"):
        await _collect(provider)
    with pytest.raises(ProviderError, match="malformed stream data"):
        await _collect(provider)


# -- timeouts, connection failures, cancellation ------------------------------------------------


async def test_first_token_and_idle_timeouts(fake_server: FakeServer) -> None:
    fake_server.queue(
        "/api/chat",
        Reply(chunks=[1.0, *ollama_stream(["late"])]),
        Reply(chunks=[ollama_stream(["a"], done=False)[0], 1.0, *ollama_stream(["b"])]),
    )
    provider = _provider(OllamaProvider, fake_server.url, first_token_timeout=0.3, idle_timeout=0.3)
    with pytest.raises(
        ProviderError, match=r"ollama: no first token within 0\.3 s \(first_token_timeout\)"
    ):
        await _collect(provider)
    with pytest.raises(ProviderError, match="idle_timeout"):
        await _collect(provider)


async def test_connection_refused_is_retried_then_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    provider = _provider(OllamaProvider, url)
    with pytest.raises(ProviderError) as err:
        await _collect(provider)
    assert err.value.message.startswith(f"ollama: cannot connect to {url}")
    assert KEY not in err.value.message


async def test_closing_the_stream_cancels_the_upstream_request(fake_server: FakeServer) -> None:
    fake_server.queue(
        "/api/chat", Reply(chunks=[ollama_stream(["a"], done=False)[0], 5.0, *ollama_stream(["b"])])
    )
    provider = _provider(OllamaProvider, fake_server.url)
    stream = provider.stream(_request())
    first = await stream.__anext__()
    assert first == TextChunk("a")
    await stream.aclose()  # type: ignore[attr-defined]
    for _ in range(50):
        if fake_server.disconnects:
            break
        await asyncio.sleep(0.02)
    await provider.close()
    assert fake_server.disconnects == 1
    assert fake_server.completed == 0


def test_retry_after_forms() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
