"""A model's chat answer is checked before its `done` event, over the real app (SSE and
WebSocket): markers corrected, unsupported sentences flagged, a tool call written as a JSON
block run as the call it meant."""

from __future__ import annotations

from typing import Any

from localresearch.paths import Paths
from tests.fakes.queued_provider import QueuedProvider
from tests.test_chat_api import QUEUED, _client, _sse


async def test_sse_and_websocket_done_events_carry_checked_citations(
    make_client: Any, paths: Paths, queued: type[QueuedProvider]
) -> None:
    client = await _client(make_client, paths, QUEUED)
    answer = (
        "SQLite runs in WAL mode so that readers never block the writer [4]. "
        "Every write goes through one writer thread. "
        "The moon is made of cheese [1]."
    )
    queued.push(answer)
    resp = await client.post("/api/chat/stream", json={"message": "How does SQLite write?"})
    events = _sse(await resp.text())
    done = events[-1]["data"]
    assert events[-1]["type"] == "done"
    # The deltas are the model's own text; `response` is the checked answer.
    assert "".join(e["data"]["text"] for e in events if e["type"] == "delta") == answer
    context = queued.requests[-1].context
    storage = next(i for i, h in enumerate(context, 1) if h.file == "notes/storage.md")
    sentences = done["sentences"]
    assert [s["supported"] for s in sentences] == [True, True, False]
    assert sentences[0]["citations"] == sentences[1]["citations"] == [storage]
    assert sentences[2]["citations"] == []
    assert done["response"].startswith(
        f"SQLite runs in WAL mode so that readers never block the writer [{storage}]."
    )
    assert "cheese." in done["response"] and "[1]." not in done["response"].split("cheese")[1]
    (citation,) = done["citations"]
    assert citation["file"] == "notes/storage.md" and citation["n"] == storage
    assert (citation["line_start"], citation["line_end"]) == (3, 4)
    # The WebSocket's final event carries the same fields.
    queued.push(answer)
    ws = await client.ws_connect("/api/ws")
    await ws.send_json({"type": "chat", "message": "How does SQLite write?"})
    while True:
        event = await ws.receive_json()
        if event["type"] in ("done", "error"):
            break
    assert event["type"] == "done"
    assert event["data"]["sentences"] == sentences
    assert event["data"]["citations"] == done["citations"]
    await ws.close()


async def test_a_tool_call_written_as_json_text_is_run(
    make_client: Any, paths: Paths, queued: type[QueuedProvider]
) -> None:
    client = await _client(make_client, paths, QUEUED)
    queued.push('```json\n{"name": "memory_search", "arguments": {"query": "writer"}}\n```')
    queued.push("Every write goes through one writer thread with BEGIN IMMEDIATE.")
    resp = await client.post("/api/chat", json={"message": "How does SQLite write?"})
    assert resp.status == 200
    done = await resp.json()
    assert done["tools_used"] == [{"name": "memory_search", "arguments": {"query": "writer"}}]
    # The JSON block is not part of the answer; the missing marker was added.
    (citation,) = done["citations"]
    assert done["response"] == (
        f"Every write goes through one writer thread with BEGIN IMMEDIATE [{citation['n']}]."
    )
    assert done["sentences"][0]["supported"] is True and citation["file"] == "notes/storage.md"
    # The second request showed the model its call and the tool's result as text, with no
    # tools offered any more (a model that writes calls as text would call again and again).
    second = queued.requests[-1]
    assistant = [m.content for m in second.messages if m.role == "assistant"]
    assert not any("memory_search" in text for text in assistant)
    assert second.messages[-1].role == "user" and "writer" in second.messages[-1].content
    assert "in plain sentences: How does SQLite write?" in second.messages[-1].content
    assert queued.requests[0].tools and not second.tools


async def test_a_json_call_cut_off_or_naming_no_tool_becomes_a_memory_search(
    make_client: Any, paths: Paths, queued: type[QueuedProvider]
) -> None:
    """As a small real model writes under a token limit: a fenced call cut mid-way, or one whose
    "name" is the question; the answer never holds the JSON."""
    client = await _client(make_client, paths, QUEUED)
    replies = [
        # Cut off by the token limit after its query: that query is searched.
        (
            '```json\n{\n  "name": "SQLite writes",\n  "arguments": {\n    "query": "writer", "li',
            "writer",
        ),
        # Cut off inside its query, and naming no tool: the question is searched.
        ('{\n  "name": "How does SQLite write?",\n  "arguments": {\n    "query": "SQLi', None),
    ]
    for reply, query in replies:
        queued.push(reply)
        queued.push("Every write goes through one writer thread with BEGIN IMMEDIATE.")
        resp = await client.post("/api/chat", json={"message": "How does SQLite write?"})
        assert resp.status == 200
        done = await resp.json()
        wanted = query or "How does SQLite write?"
        assert done["tools_used"] == [{"name": "memory_search", "arguments": {"query": wanted}}]
        assert "{" not in done["response"] and "name" not in done["response"], done["response"]
        assert done["response"].startswith("Every write goes through one writer thread")
        assert not queued.requests[-1].tools
    # A reply that is prose, or JSON that is no call, is the answer as it is.
    queued.push('{"answer": 42}')
    done = await (await client.post("/api/chat", json={"message": "How?"})).json()
    assert done["tools_used"] == [] and done["response"] == '{"answer": 42}'
