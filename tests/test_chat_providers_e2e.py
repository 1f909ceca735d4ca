"""The chat service over real wire formats: a model behind a loopback Ollama-protocol server
calls tools, gets their results in Ollama's format, and answers; web_fetch only when enabled."""

from __future__ import annotations

from typing import Any

import pytest

from localresearch.config.schema import LLMConfig
from localresearch.errors import ProviderError
from localresearch.paths import Paths
from localresearch.providers.registry import create_provider
from tests.fakes.apps import notes_client
from tests.fakes.servers import FakeServer, Reply, json_reply, ollama_stream


async def _client(make_client: Any, paths: Paths, text: str) -> Any:
    notes = {"tea.md": "# Tea\n\nGreen tea steeps for two minutes.\n"}
    return await notes_client(make_client, paths, notes, text)


async def test_ollama_tool_round_trip_through_the_api(
    make_client: Any, paths: Paths, fake_server: FakeServer
) -> None:
    call = {"name": "memory_search", "arguments": {"query": "green tea"}}
    fake_server.queue(
        "/api/chat",
        Reply(chunks=ollama_stream([], tool_calls=[call], counts=(30, 5))),
        Reply(chunks=ollama_stream(["Two minutes ", "[1]."], counts=(60, 4))),
    )
    client = await _client(
        make_client,
        paths,
        f'[llm]\nprovider = "ollama"\nbase_url = "{fake_server.url}"\nmodel = "qwen3"\n',
    )
    resp = await client.post("/api/chat/stream", json={"message": "green tea steeps"})
    raw = await resp.text()
    assert '"type":"tool_call"' in raw
    done = await (await client.get("/api/sessions")).json()  # nothing saved without a session
    assert done["total"] == 0
    first, second = (r.body for r in fake_server.requests)
    assert first["model"] == "qwen3"
    assert "notes/tea.md" in first["messages"][0]["content"]  # grounding sources in the prompt
    assert first["tools"][0]["function"]["name"] == "memory_search"
    assistant, tool = second["messages"][-2:]
    assert assistant["tool_calls"] == [{"function": call}]
    assert tool["role"] == "tool" and tool["tool_name"] == "memory_search"
    assert "Green tea steeps for two minutes." in tool["content"]

    fake_server.queue("/api/chat", Reply(chunks=ollama_stream(["Steep it [1]."], counts=(9, 3))))
    body = await (await client.post("/api/chat", json={"message": "green tea?"})).json()
    assert body["response"] == "Steep it [1]."
    assert body["model"] == "ollama/qwen3"
    assert body["tokens"] == {"prompt": 9, "completion": 3, "total": 12}
    assert body["citations"][0]["file"] == "notes/tea.md"


async def test_provider_http_error_is_a_502_envelope(
    make_client: Any, paths: Paths, fake_server: FakeServer
) -> None:
    fake_server.queue("/api/chat", json_reply({"error": 'model "qwen3" not found'}, 404))
    client = await _client(
        make_client, paths, f'[llm]\nprovider = "ollama"\nbase_url = "{fake_server.url}"\n'
    )
    resp = await client.post("/api/chat", json={"message": "hi"})
    assert resp.status == 502
    assert await resp.json() == {
        "error": {"code": "provider_error", "message": 'ollama: HTTP 404: model "qwen3" not found'}
    }


async def test_web_fetch_tool_only_when_enabled(
    make_client: Any, paths: Paths, fake_server: FakeServer
) -> None:
    page = b"<html><head><style>x{}</style></head><body><h1>Hi</h1><p>Tea &amp; cake</p></body>"
    fake_server.queue("/page", Reply(chunks=[page], content_type="text/html"))
    fetch = {"name": "web_fetch", "arguments": {"url": f"{fake_server.url}/page"}}
    fake_server.queue(
        "/api/chat",
        Reply(chunks=ollama_stream([], tool_calls=[fetch])),
        Reply(chunks=ollama_stream(["done"])),
    )
    client = await _client(
        make_client,
        paths,
        f'[llm]\nprovider = "ollama"\nbase_url = "{fake_server.url}"\n[api]\nweb_fetch = true\n',
    )
    body = await (await client.post("/api/chat", json={"message": "fetch it"})).json()
    assert body["tools_used"] == [fetch]
    chats = [r.body for r in fake_server.requests if r.path == "/api/chat"]
    assert "web_fetch" in {t["function"]["name"] for t in chats[0]["tools"]}
    result = chats[1]["messages"][-1]["content"]
    assert "Tea & cake" in result and "<p>" not in result and "x{}" not in result


def test_llamacpp_without_its_extra_is_a_clear_error(tmp_path: Any) -> None:
    pytest.importorskip("localresearch.providers.llamacpp")
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("llama-cpp-python is installed here")
    provider = create_provider(LLMConfig(provider="llamacpp", model_path=str(tmp_path / "x.gguf")))
    with pytest.raises(ProviderError, match=r"pip install 'localresearch\[llamacpp\]'"):
        provider._load()  # type: ignore[attr-defined]
