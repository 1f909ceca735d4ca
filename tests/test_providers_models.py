"""A model name the provider's server cannot serve is refused up front, naming the provider and
its models, against loopback servers that answer each provider's model list in its own wire
format (OpenAI and llama.cpp GET /v1/models, Ollama GET /api/tags, Anthropic GET /v1/models);
a server whose list cannot be had does not block the question."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from localresearch.config import load_config
from localresearch.paths import Paths
from localresearch.providers.anthropic import AnthropicProvider
from localresearch.providers.base import ProviderOptions
from localresearch.providers.http import HTTPProvider
from localresearch.providers.ollama import OllamaProvider
from localresearch.providers.openai import OpenAIProvider
from localresearch.server.keys import RUNTIME
from tests.conftest import free_port
from tests.daemon_fixture import DaemonHandle
from tests.fakes.servers import (
    FakeServer,
    Reply,
    anthropic_models,
    anthropic_stream,
    ollama_stream,
    ollama_tags,
    openai_models,
    openai_stream,
)

KEY_ENV = "MODELS_TEST_ANTHROPIC_KEY"


async def _served(cls: type[HTTPProvider], url: str) -> list[str] | None:
    provider = cls(ProviderOptions(base_url=url, api_key="k"))
    try:
        return await provider.served_models()
    finally:
        await provider.close()


async def test_each_wire_format_lists_its_models(fake_server: FakeServer) -> None:
    fake_server.queue("/v1/models", openai_models(["gpt-4o", "gpt-4o-mini"]))
    assert await _served(OpenAIProvider, fake_server.url) == ["gpt-4o", "gpt-4o-mini"]
    fake_server.queue("/api/tags", ollama_tags(["llama3.2:latest", "qwen3:8b"]))
    assert await _served(OllamaProvider, fake_server.url) == ["llama3.2:latest", "qwen3:8b"]
    anthropic = AnthropicProvider(ProviderOptions(base_url=fake_server.url, api_key="k"))
    fake_server.queue("/v1/models", anthropic_models(["claude-sonnet-4-5-20250929"]))
    assert await anthropic.served_models() == ["claude-sonnet-4-5-20250929"]
    await anthropic.close()
    seen = fake_server.requests[-1]
    assert seen.method == "GET" and seen.headers["x-api-key"] == "k"
    assert seen.headers["anthropic-version"]


async def test_aliases_each_provider_serves() -> None:
    ollama = OllamaProvider(ProviderOptions())
    assert ollama.serves("llama3.2", ["llama3.2:latest"])
    assert not ollama.serves("llama3.2", ["llama3.2:1b"])
    claude = AnthropicProvider(ProviderOptions(api_key="k"))
    served = ["claude-sonnet-4-5-20250929", "claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"]
    for alias in ("claude-sonnet-4-5", "claude-sonnet-4-0", "claude-3-5-haiku-latest"):
        assert claude.serves(alias, served), alias
    for wrong in ("claude-sonnet", "claude-opus-4-1", "gpt-4o"):
        assert not claude.serves(wrong, served), wrong
    assert not OpenAIProvider(ProviderOptions()).serves("gpt-4", ["gpt-4o"])


async def test_lists_that_cannot_tell_do_not_block(fake_server: FakeServer) -> None:
    # llama.cpp's server lists its one model by file name and answers any name with it.
    fake_server.queue("/a/v1/models", openai_models(["/m/qwen.gguf"], owned_by="llamacpp"))
    assert await _served(OpenAIProvider, fake_server.url + "/a/v1") is None
    # No such endpoint (404), a body in no known shape, a partial page of Anthropic's list.
    assert await _served(OllamaProvider, fake_server.url) is None
    fake_server.queue("/b/v1/models", Reply(chunks=[b"<html>nope</html>"]))
    assert await _served(OpenAIProvider, fake_server.url + "/b/v1") is None
    fake_server.queue("/v1/models", anthropic_models(["claude-x-20250101"], has_more=True))
    assert await _served(AnthropicProvider, fake_server.url) is None
    assert all(not q for q in fake_server.replies.values())  # each list was asked for
    # A server that is down: no list, at once (no retries).
    started = time.monotonic()
    assert await _served(OpenAIProvider, f"http://127.0.0.1:{free_port()}") is None
    assert time.monotonic() - started < 3.0


async def test_the_list_is_cached_briefly(fake_server: FakeServer) -> None:
    fake_server.queue("/c/v1/models", openai_models(["m1"]), openai_models(["m1", "m2"]))
    url = fake_server.url + "/c/v1"
    assert await _served(OpenAIProvider, url) == ["m1"]
    assert await _served(OpenAIProvider, url) == ["m1"]  # from the cache: one request
    assert [r.path for r in fake_server.requests] == ["/c/v1/models"]


def _llm(provider: str, url: str, model: str) -> str:
    key = f'api_key_env = "{KEY_ENV}"\n' if provider == "anthropic" else ""
    return f'[llm]\nprovider = "{provider}"\nbase_url = "{url}"\nmodel = "{model}"\n{key}'


async def _client(make_client: Any, paths: Paths, text: str) -> Any:
    paths.config_file.write_text("[memory]\nwatch = false\n\n" + text, encoding="utf-8")
    client = await make_client(load_config(paths.config_file))
    await client.app[RUNTIME].memory.wait_ready()
    return client


@pytest.mark.parametrize(
    ("provider", "prefix", "listing", "reply", "chat_path"),
    [
        (
            "openai",
            "/v1",
            openai_models(["gpt-4o", "gpt-4o-mini"]),
            lambda: Reply(chunks=openai_stream(["Fine."])),
            "/v1/chat/completions",
        ),
        (
            "ollama",
            "",
            ollama_tags(["llama3.2:latest", "qwen3:8b"]),
            lambda: Reply(chunks=ollama_stream(["Fine."])),
            "/api/chat",
        ),
        (
            "anthropic",
            "",
            anthropic_models(["claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022"]),
            lambda: Reply(chunks=anthropic_stream(["Fine."]), content_type="text/event-stream"),
            "/v1/messages",
        ),
    ],
)
async def test_unknown_model_is_a_400_naming_provider_and_models(
    make_client: Any,
    paths: Paths,
    fake_server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    provider: str,
    prefix: str,
    listing: Reply,
    reply: Any,
    chat_path: str,
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-ant-test")
    models_path = "/v1/models" if provider != "ollama" else "/api/tags"
    fake_server.queue(models_path, listing)
    configured = {"openai": "gpt-4o-mini", "ollama": "llama3.2", "anthropic": "claude-sonnet-4-5"}
    client = await _client(
        make_client, paths, _llm(provider, fake_server.url + prefix, configured[provider])
    )
    for path in ("/api/chat", "/api/chat/stream"):
        resp = await client.post(path, json={"message": "hi", "model": "gpt-9-nope"})
        assert resp.status == 400, await resp.text()
        error = (await resp.json())["error"]
        assert error["code"] == "invalid_request"
        assert f"not served by provider '{provider}'" in error["message"]
        for name in [m["id"] if "id" in m else m["name"] for m in _listed(listing)]:
            assert name in error["message"]
    # A listed model (or its alias) is asked for; the list was fetched once for all of this.
    alias = {"openai": "gpt-4o", "ollama": "qwen3:8b", "anthropic": "claude-3-5-haiku-latest"}
    fake_server.queue(chat_path, reply())
    resp = await client.post("/api/chat", json={"message": "hi", "model": alias[provider]})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["model"] == f"{provider}/{alias[provider]}"
    paths_seen = [r.path for r in fake_server.requests]
    assert paths_seen == [models_path, chat_path]
    assert fake_server.requests[-1].body["model"] == alias[provider]
    # Over the WebSocket: the same error as an `error` event.
    async with client.ws_connect("/api/ws") as ws:
        await ws.send_json({"type": "chat", "message": "hi", "model": "gpt-9-nope"})
        event = await asyncio.wait_for(ws.receive_json(), 30)
        assert event["type"] == "error", event
        assert f"not served by provider '{provider}'" in event["data"]["message"]


def _listed(reply: Reply) -> list[dict[str, Any]]:
    import json

    body = json.loads(b"".join(c for c in reply.chunks if isinstance(c, bytes)))
    return list(body.get("data") or body.get("models"))


async def test_without_a_model_list_the_question_goes_through(
    make_client: Any, paths: Paths, fake_server: FakeServer
) -> None:
    client = await _client(make_client, paths, _llm("openai", fake_server.url + "/v1", "a"))
    fake_server.queue("/v1/chat/completions", Reply(chunks=openai_stream(["Fine."])))
    resp = await client.post("/api/chat", json={"message": "hi", "model": "anything"})
    assert resp.status == 200, await resp.text()
    assert [r.path for r in fake_server.requests] == ["/v1/models", "/v1/chat/completions"]
    assert fake_server.requests[-1].body["model"] == "anything"


async def test_ask_with_a_model_the_server_lacks_exits_2(
    daemon_env: DaemonHandle, fake_server: FakeServer, tmp_path: Path
) -> None:
    fake_server.queue("/api/tags", ollama_tags(["llama3.2:latest", "qwen3:8b"]))
    text = "[memory]\nwatch = false\n\n" + _llm("ollama", fake_server.url, "llama3.2")
    (daemon_env.home / "config.toml").write_text(text, encoding="utf-8")
    try:
        wrong = await asyncio.to_thread(daemon_env.cli, "ask", "--model", "gpt-4o", "hi?")
        assert wrong.returncode == 2, wrong.stdout + wrong.stderr
        assert "not served by provider 'ollama'" in wrong.stderr
        assert "llama3.2:latest, qwen3:8b" in wrong.stderr
        assert wrong.stdout == ""
        assert "/api/chat" not in [r.path for r in fake_server.requests]
    finally:
        await asyncio.to_thread(daemon_env.stop)
