"""The openai provider against a real OpenAI-compatible server: llama.cpp on loopback serving a
tiny local model (random weights: ASCII gibberish, deterministic at temperature 0, always runs to
max_tokens)."""

from __future__ import annotations

from typing import Any

import pytest

from localresearch.config import load_config
from localresearch.paths import Paths
from localresearch.providers.base import (
    ChatRequest,
    Message,
    ProviderOptions,
    StreamItem,
    TextChunk,
    Usage,
)
from localresearch.providers.openai import OpenAIProvider

pytestmark = pytest.mark.llamacpp


def _provider(url: str, **kw: Any) -> OpenAIProvider:
    options = ProviderOptions(base_url=url, model="tiny", temperature=0.0, max_tokens=16, **kw)
    return OpenAIProvider(options)


def _request() -> ChatRequest:
    return ChatRequest(messages=[Message("system", "Be brief."), Message("user", "Say hello.")])


async def test_streaming_against_llamacpp(llamacpp_server: str) -> None:
    provider = _provider(llamacpp_server)
    try:
        items: list[StreamItem] = [item async for item in provider.stream(_request())]
        again = [item async for item in provider.stream(_request())]
    finally:
        await provider.close()
    chunks = [i for i in items if isinstance(i, TextChunk)]
    assert len(chunks) >= 8  # one chunk per token, streamed
    usage = items[-1]
    assert isinstance(usage, Usage)
    assert usage.completion_tokens == 16  # the tiny model always runs to max_tokens
    assert usage.prompt_tokens > 0
    text = "".join(c.text for c in chunks)
    assert text == "".join(i.text for i in again if isinstance(i, TextChunk))  # temperature 0


async def test_non_streaming_against_llamacpp(llamacpp_server: str) -> None:
    provider = _provider(llamacpp_server)
    try:
        items = await provider.complete(_request())
        streamed = [item async for item in provider.stream(_request())]
        models = await provider.list_models()
    finally:
        await provider.close()
    assert isinstance(items[0], TextChunk) and items[0].text
    assert items[-1] == Usage(items[-1].prompt_tokens, 16)
    assert items[0].text == "".join(i.text for i in streamed if isinstance(i, TextChunk))
    assert models == ["tiny"]


async def test_chat_api_streams_from_llamacpp(
    llamacpp_server: str, make_client: Any, paths: Paths
) -> None:
    paths.config_file.write_text(
        f'[llm]\nprovider = "openai"\nbase_url = "{llamacpp_server}"\nmodel = "tiny"\n'
        "max_tokens = 12\ntemperature = 0.0\n",
        encoding="utf-8",
    )
    client = await make_client(load_config(paths.config_file))
    body = await (await client.post("/api/chat", json={"message": "hello"})).json()
    assert body["model"] == "openai/tiny"
    assert body["tokens"]["completion"] == 12
    assert body["tokens"]["total"] == body["tokens"]["prompt"] + 12
    resp = await client.post("/api/chat/stream", json={"message": "hello"})
    raw = await resp.text()
    assert '"type":"done"' in raw
    deltas = raw.count('"type":"delta"')
    assert deltas >= 6
    models = await (await client.get("/api/models")).json()
    openai = next(p for p in models["providers"] if p["id"] == "openai")
    assert openai["configured"] is True and openai["models"] == ["tiny"]
