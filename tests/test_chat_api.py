"""POST /api/chat, POST /api/chat/stream and sessions, through the real app and real SQLite."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from localresearch.config import load_config
from localresearch.errors import ProviderError
from localresearch.paths import Paths
from localresearch.providers.base import ToolCall, Usage
from localresearch.server.keys import RUNTIME
from localresearch.workspace import daily_log_path, workspace_dir
from tests.fakes.queued_provider import Gate, QueuedProvider

NOTES = """# Storage notes

SQLite runs in WAL mode so that readers never block the writer.
Every write goes through one writer thread with BEGIN IMMEDIATE.

## Unrelated

The garden needs watering on Tuesdays.
"""


async def _client(make_client: Any, paths: Paths, config_text: str = "", notes: bool = True) -> Any:
    if config_text:
        paths.config_file.write_text(config_text, encoding="utf-8")
    config = load_config(paths.config_file)
    workspace = workspace_dir(config, paths)
    if notes:
        (workspace / "notes").mkdir(parents=True, exist_ok=True)
        (workspace / "notes" / "storage.md").write_text(NOTES, encoding="utf-8")
    client = await make_client(config)
    memory = client.server.app[RUNTIME].memory
    if memory is not None:
        await memory.wait_ready()
    return client


def _sse(raw: str) -> list[dict[str, Any]]:
    events = []
    for frame in raw.split("\n\n"):
        data = [line[6:] for line in frame.splitlines() if line.startswith("data: ")]
        ids = [line[4:] for line in frame.splitlines() if line.startswith("id: ")]
        if data:
            event = json.loads("\n".join(data))
            event["_id"] = int(ids[0]) if ids else None
            events.append(event)
    return events


QUEUED = '[llm]\nprovider = "queued"\n'


async def test_builtin_answer_is_grounded_and_cited(make_client: Any, paths: Paths) -> None:
    client = await _client(make_client, paths)
    resp = await client.post("/api/chat", json={"message": "How does SQLite handle the writer?"})
    assert resp.status == 200
    body = await resp.json()
    assert list(body)[:4] == ["response", "model", "tokens", "tools_used"]
    assert body["model"] == "builtin/extractive"
    assert "readers never block the writer" in body["response"]
    assert "one writer thread" in body["response"]
    assert "garden" not in body["response"]
    assert body["tools_used"] == []
    tokens = body["tokens"]
    assert tokens["total"] == tokens["prompt"] + tokens["completion"] > 0
    cites = {(c["file"], c["line_start"], c["line_end"]) for c in body["citations"]}
    assert ("notes/storage.md", 3, 3) in cites
    assert ("notes/storage.md", 4, 4) in cites
    for c in body["citations"]:
        assert f"[{c['n']}]" in body["response"]


async def test_builtin_says_plainly_when_nothing_is_relevant(
    make_client: Any, paths: Paths
) -> None:
    client = await _client(make_client, paths)
    resp = await client.post("/api/chat", json={"message": "What about kubernetes operators?"})
    body = await resp.json()
    assert body["response"].startswith("I found nothing in your notes about")
    assert body["citations"] == []


async def test_include_memory_false_skips_retrieval(make_client: Any, paths: Paths) -> None:
    client = await _client(make_client, paths)
    resp = await client.post(
        "/api/chat", json={"message": "sqlite writer", "include_memory": False}
    )
    body = await resp.json()
    assert "I found nothing" in body["response"]
    assert "Memory search is off" in body["response"]


async def test_bad_input_is_a_clear_4xx(make_client: Any, paths: Paths) -> None:
    client = await _client(make_client, paths, notes=False)
    cases: list[tuple[Any, int, str]] = [
        ({}, 400, "Missing required parameter: message"),
        ({"message": "   "}, 400, "Missing required parameter: message"),
        ({"message": 3}, 400, "message must be a string"),
        ({"message": "hi", "include_memory": "yes"}, 400, "include_memory must be a boolean"),
        ({"message": "hi", "session_id": "nope"}, 404, "No such session: nope"),
        # "nosuch/x" is a model name, which builtin (the configured provider) cannot serve
        ({"message": "hi", "model": "nosuch/x"}, 400, "not served by provider 'builtin'"),
        ({"message": "hi", "model": "openai"}, 400, "Provider 'openai' is not configured"),
        ({"message": "hi", "model": "builtin/extractive"}, 200, ""),
    ]
    for payload, status, text in cases:
        for path in ("/api/chat", "/api/chat/stream"):
            resp = await client.post(path, json=payload)
            assert resp.status == status, (path, payload, await resp.text())
            if status != 200:
                assert text in (await resp.json())["error"]["message"]
            else:
                await resp.read()
    resp = await client.post(
        "/api/chat", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_request"


async def test_unknown_provider_in_model_is_400(make_client: Any, paths: Paths) -> None:
    client = await _client(make_client, paths, notes=False)
    resp = await client.post("/api/chat", json={"message": "hi", "model": "anthropic"})
    # anthropic needs a key: a provider_error (502) that names the setting, no traceback
    assert resp.status == 502
    assert "llm.api_key_env" in (await resp.json())["error"]["message"]


async def test_stream_events_and_daily_log(make_client: Any, paths: Paths) -> None:
    client = await _client(make_client, paths)
    resp = await client.post("/api/chat/stream", json={"message": "sqlite WAL readers"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events = _sse(await resp.text())
    types = [e["type"] for e in events]
    assert types[0] == "start" and types[-1] == "done"
    assert set(types[1:-1]) == {"delta"}
    assert [e["_id"] for e in events] == list(range(1, len(events) + 1))
    text = "".join(e["data"]["text"] for e in events if e["type"] == "delta")
    done = events[-1]["data"]
    assert text == done["response"]
    assert "WAL mode" in text
    assert done["citations"][0]["file"] == "notes/storage.md"
    config = load_config(paths.config_file)
    log = daily_log_path(workspace_dir(config, paths)).read_text(encoding="utf-8")
    assert "Chat: sqlite WAL readers" in log
    assert "notes/storage.md:3-3" in log


async def test_sessions_multi_turn_and_persistence(
    make_client: Any, paths: Paths, queued: type[QueuedProvider]
) -> None:
    client = await _client(make_client, paths, QUEUED, notes=False)
    resp = await client.post("/api/sessions", json={})
    assert resp.status == 201
    session = await resp.json()
    sid = session["id"]
    queued.push("Paris.")
    queued.push("About 2.1 million.")
    for question in ("Capital of France?", "And its population?"):
        resp = await client.post("/api/chat", json={"message": question, "session_id": sid})
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["session_id"] == sid
    second = queued.requests[1]
    roles = [(m.role, m.content) for m in second.messages if m.role != "system"]
    assert roles == [
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
        ("user", "And its population?"),
    ]
    listed = await (await client.get("/api/sessions")).json()
    assert listed["total"] == 1
    assert listed["sessions"][0]["title"] == "Capital of France?"
    assert listed["sessions"][0]["message_count"] == 4
    await client.close()

    # A new daemon on the same database still has the session.
    client = await _client(make_client, paths, notes=False)
    full = await (await client.get(f"/api/sessions/{sid}")).json()
    assert [m["content"] for m in full["messages"]] == [
        "Capital of France?",
        "Paris.",
        "And its population?",
        "About 2.1 million.",
    ]
    assert full["messages"][1]["model"] == "queued/queued-1"
    resp = await client.delete(f"/api/sessions/{sid}")
    assert resp.status == 200
    assert (await client.get(f"/api/sessions/{sid}")).status == 404
    assert (await client.delete(f"/api/sessions/{sid}")).status == 404


async def test_provider_failure_is_502_or_error_event(
    make_client: Any, paths: Paths, queued: type[QueuedProvider]
) -> None:
    client = await _client(make_client, paths, QUEUED, notes=False)
    queued.push(ProviderError("upstream said: model overloaded"))
    resp = await client.post("/api/chat", json={"message": "hi"})
    assert resp.status == 502
    assert await resp.json() == {
        "error": {"code": "provider_error", "message": "upstream said: model overloaded"}
    }
    queued.push("partial ", ProviderError("stream cut"))
    resp = await client.post("/api/chat/stream", json={"message": "hi"})
    events = _sse(await resp.text())
    assert [e["type"] for e in events] == ["start", "delta", "error"]
    assert events[-1]["data"] == {"code": "provider_error", "message": "stream cut"}


async def test_tools_memory_save_and_read_file(
    make_client: Any, paths: Paths, queued: type[QueuedProvider]
) -> None:
    client = await _client(make_client, paths, QUEUED)
    workspace = workspace_dir(load_config(paths.config_file), paths)
    secret = paths.config_file.parent / "outside.txt"
    secret.write_text("top secret", encoding="utf-8")
    queued.push(
        ToolCall("c1", "memory_save", {"text": "The user prefers tea."}),
        ToolCall("c2", "read_file", {"path": "notes/storage.md", "start_line": 3, "end_line": 3}),
        ToolCall("c3", "read_file", {"path": "../../outside.txt"}),
        ToolCall("c4", "read_file", {"path": str(secret)}),
    )
    queued.push("Saved and read.")
    resp = await client.post("/api/chat", json={"message": "remember I like tea"})
    body = await resp.json()
    assert body["response"] == "Saved and read."
    assert [t["name"] for t in body["tools_used"]] == [
        "memory_save",
        "read_file",
        "read_file",
        "read_file",
    ]
    assert body["tools_used"][0]["arguments"] == {"text": "The user prefers tea."}
    assert "- The user prefers tea. (" in (workspace / "MEMORY.md").read_text(encoding="utf-8")
    followup = queued.requests[1].messages
    results = {m.tool_call_id: m.content for m in followup if m.role == "tool"}
    assert results["c1"] == "Saved to MEMORY.md."
    assert results["c2"] == "SQLite runs in WAL mode so that readers never block the writer."
    assert "refused" in results["c3"] and "top secret" not in results["c3"]
    assert "refused" in results["c4"] and "top secret" not in results["c4"]
    assistant = [m for m in followup if m.role == "assistant"][-1]
    assert [c.id for c in assistant.tool_calls] == ["c1", "c2", "c3", "c4"]
    # web_fetch is off unless api.web_fetch: not offered, and refused if called anyway
    assert "web_fetch" not in {t.name for t in queued.requests[0].tools}


async def test_llm_citations_map_to_context_passages(
    make_client: Any, paths: Paths, queued: type[QueuedProvider]
) -> None:
    client = await _client(make_client, paths, QUEUED)
    queued.push("Readers never block [1]; [9] is not a source.", Usage(10, 5))
    resp = await client.post("/api/chat", json={"message": "sqlite writer readers"})
    body = await resp.json()
    assert body["tokens"] == {"prompt": 10, "completion": 5, "total": 15}
    assert [c["n"] for c in body["citations"]] == [1]
    assert body["citations"][0]["file"] == "notes/storage.md"
    context = queued.requests[0].context
    assert context and context[0].file == "notes/storage.md"


async def test_client_disconnect_cancels_upstream(
    make_client: Any, paths: Paths, queued: type[QueuedProvider]
) -> None:
    client = await _client(make_client, paths, QUEUED, notes=False)
    gate = Gate()
    queued.push("first ", gate, "never sent")
    resp = await client.post("/api/chat/stream", json={"message": "hi"})
    await asyncio.wait_for(gate.reached.wait(), 5)
    resp.close()  # the client goes away while the model is still thinking
    for _ in range(100):
        if queued.cancelled:
            break
        await asyncio.sleep(0.05)
    assert queued.cancelled == 1
    assert queued.finished == 0


async def test_models_lists_providers(make_client: Any, paths: Paths) -> None:
    client = await _client(make_client, paths, notes=False)
    body = await (await client.get("/api/models")).json()
    assert body["default"] == "builtin/extractive"
    by_id = {p["id"]: p for p in body["providers"]}
    assert {"builtin", "openai", "ollama", "anthropic", "llamacpp"} <= set(by_id)
    assert by_id["builtin"]["configured"] is True
    assert by_id["builtin"]["models"] == ["extractive"]
    assert by_id["anthropic"]["needs_key"] is True


async def test_stream_sends_keepalives_while_the_model_thinks(
    make_client: Any, paths: Paths, queued: type[QueuedProvider], monkeypatch: Any
) -> None:
    from localresearch.server.routes import chat as chat_routes
    from tests.fakes.queued_provider import Pause

    monkeypatch.setattr(chat_routes, "STREAM_KEEPALIVE", 0.05)
    client = await _client(make_client, paths, QUEUED, notes=False)
    queued.push(Pause(0.3), "late")
    raw = await (await client.post("/api/chat/stream", json={"message": "hi"})).text()
    assert raw.count(": keep-alive\n\n") >= 3
    assert [e["type"] for e in _sse(raw)] == ["start", "delta", "done"]


async def test_models_lists_providers_even_when_the_configured_one_is_unusable(
    make_client: Any, paths: Paths
) -> None:
    client = await _client(
        make_client, paths, '[llm]\nprovider = "anthropic"\napi_key_env = "LR_NO_SUCH"\n', False
    )
    resp = await client.get("/api/models")
    assert resp.status == 200
    body = await resp.json()
    assert body["default"] is None
    anthropic = next(p for p in body["providers"] if p["id"] == "anthropic")
    assert anthropic["configured"] is True
    assert "LR_NO_SUCH" in anthropic["error"]


async def test_post_chat_disconnect_cancels_upstream(
    make_client: Any, paths: Paths, queued: type[QueuedProvider]
) -> None:
    client = await _client(make_client, paths, QUEUED, notes=False)
    gate = Gate()
    queued.push(gate, "never")
    task = asyncio.create_task(client.post("/api/chat", json={"message": "hi"}))
    await asyncio.wait_for(gate.reached.wait(), 5)
    task.cancel()  # the HTTP client gives up and closes its connection
    for _ in range(100):
        if queued.cancelled:
            break
        await asyncio.sleep(0.05)
    assert queued.cancelled == 1


async def test_record_false_keeps_the_answer_out_of_the_daily_log(
    make_client: Any, paths: Paths
) -> None:
    from localresearch.heartbeat.runner import ServicesTaskRunner

    client = await _client(make_client, paths)
    runtime = client.server.app[RUNTIME]
    log_file = daily_log_path(workspace_dir(load_config(paths.config_file), paths))
    before = log_file.read_text(encoding="utf-8") if log_file.exists() else ""
    done = await runtime.chat.answer("How does SQLite handle the writer?", record=False)
    assert "writer thread" in done["response"]
    # The heartbeat's asks go through the same switch: it logs the task result itself.
    result = await ServicesTaskRunner(chat=runtime.chat).ask("sqlite WAL readers")
    assert "WAL mode" in result.summary
    after = log_file.read_text(encoding="utf-8") if log_file.exists() else ""
    assert after == before
    await runtime.chat.answer("sqlite WAL readers")  # the default still records
    assert "Chat: sqlite WAL readers" in log_file.read_text(encoding="utf-8")
