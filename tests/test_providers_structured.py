"""Structured output on the wire: each provider sends the reply's JSON schema in its server's own
field (OpenAI/llama.cpp `response_format` json_schema, Ollama `format`, an Anthropic tool with
`tool_choice`), and what comes back is the JSON text the research steps parse."""

from __future__ import annotations

import json
from typing import Any

from localresearch.providers.anthropic import AnthropicProvider
from localresearch.providers.base import ChatRequest, Message, ProviderOptions, TextChunk, ToolCall
from localresearch.providers.http import HTTPProvider
from localresearch.providers.ollama import OllamaProvider
from localresearch.providers.openai import OpenAIProvider
from localresearch.research.structured import scope_schema, summary_schema
from tests.fakes.servers import FakeServer, Reply, anthropic_stream, ollama_stream, openai_stream

REPLY = {"dimensions": ["Pruning", "Fire blight"]}


def _request(schema: tuple[str, dict[str, Any]]) -> ChatRequest:
    return ChatRequest(
        messages=[Message("system", "research"), Message("user", "Split the question")],
        json_mode=True,
        json_schema=schema[1],
        schema_name=schema[0],
    )


async def _run(provider: HTTPProvider, request: ChatRequest) -> list[Any]:
    try:
        return [item async for item in provider.stream(request)]
    finally:
        await provider.close()


async def test_openai_sends_a_json_schema_response_format(fake_server: FakeServer) -> None:
    fake_server.queue("/v1/chat/completions", Reply(chunks=openai_stream([json.dumps(REPLY)])))
    provider = OpenAIProvider(ProviderOptions(base_url=fake_server.url))
    items = await _run(provider, _request(scope_schema(2)))
    sent = fake_server.requests[0].body
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "dimensions", "schema": scope_schema(2)[1], "strict": True},
    }
    schema = sent["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["dimensions"] and schema["additionalProperties"] is False
    assert schema["properties"]["dimensions"]["maxItems"] == 2
    text = "".join(i.text for i in items if isinstance(i, TextChunk))
    assert json.loads(text) == REPLY
    # Without a schema, JSON mode stays the plain json_object format.
    fake_server.queue("/v1/chat/completions", Reply(chunks=openai_stream(["{}"])))
    plain = ChatRequest(messages=[Message("user", "x")], json_mode=True)
    await _run(OpenAIProvider(ProviderOptions(base_url=fake_server.url)), plain)
    assert fake_server.requests[1].body["response_format"] == {"type": "json_object"}


async def test_ollama_sends_the_schema_as_format(fake_server: FakeServer) -> None:
    fake_server.queue("/api/chat", Reply(chunks=ollama_stream([json.dumps(REPLY)])))
    provider = OllamaProvider(ProviderOptions(base_url=fake_server.url))
    items = await _run(provider, _request(summary_schema()))
    sent = fake_server.requests[0].body
    assert sent["format"] == summary_schema()[1]
    assert set(sent["format"]["properties"]) == {"summary", "keyFinding", "points"}
    assert "".join(i.text for i in items if isinstance(i, TextChunk)) == json.dumps(REPLY)


async def test_anthropic_forces_a_tool_whose_input_is_the_reply(fake_server: FakeServer) -> None:
    tool_use = {"id": "toolu_1", "name": "dimensions", "input": REPLY}
    fake_server.queue("/v1/messages", Reply(chunks=anthropic_stream([], tool_use=tool_use)))
    provider = AnthropicProvider(ProviderOptions(base_url=fake_server.url, api_key="k"))
    items = await _run(provider, _request(scope_schema(2)))
    sent = fake_server.requests[0].body
    assert sent["tool_choice"] == {"type": "tool", "name": "dimensions"}
    assert sent["tools"] == [
        {
            "name": "dimensions",
            "description": "Give the reply as this tool's input.",
            "input_schema": scope_schema(2)[1],
        }
    ]
    assert not [i for i in items if isinstance(i, ToolCall)]  # the reply, not a tool call
    text = "".join(i.text for i in items if isinstance(i, TextChunk))
    assert json.loads(text) == REPLY
