"""GET /api/ws: the same events as SSE, cancel stops the answer and keeps the socket."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType

from localresearch.config import load_config
from localresearch.paths import Paths
from localresearch.server.keys import WEBSOCKETS
from tests.fakes.queued_provider import Gate, QueuedProvider


async def _events_until(ws: Any, last: set[str]) -> list[dict[str, Any]]:
    events = []
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == WSMsgType.TEXT, msg
        event = msg.json()
        events.append(event)
        if event["type"] in last:
            return events


async def _client(make_client: Any, paths: Paths) -> Any:
    paths.config_file.write_text('[llm]\nprovider = "queued"\n', encoding="utf-8")
    return await make_client(load_config(paths.config_file))


async def test_ws_chat_cancel_and_continue(
    make_client: Any, paths: Paths, queued: type[QueuedProvider]
) -> None:
    client = await _client(make_client, paths)
    session = await (await client.post("/api/sessions", json={"title": "ws"})).json()
    ws = await client.ws_connect("/api/ws")
    assert len(client.server.app[WEBSOCKETS]) == 1

    queued.push("Hel", "lo")
    await ws.send_json({"type": "chat", "message": "hi", "session_id": session["id"]})
    events = await _events_until(ws, {"done", "error"})
    assert [e["type"] for e in events] == ["start", "delta", "delta", "done"]
    assert events[0]["data"] == {"session_id": session["id"], "model": "queued/queued-1"}
    assert events[-1]["data"]["response"] == "Hello"
    assert all(e["timestamp"].endswith("Z") for e in events)

    gate = Gate()
    queued.push("slow ", gate, "never")
    await ws.send_json({"type": "chat", "message": "long one", "session_id": session["id"]})
    first = await _events_until(ws, {"delta"})
    assert first[-1]["data"] == {"text": "slow "}
    await asyncio.wait_for(gate.reached.wait(), 5)
    # a second question while one is running is refused, not interleaved
    await ws.send_json({"type": "chat", "message": "too soon"})
    refused = await _events_until(ws, {"error"})
    assert refused[-1]["data"]["code"] == "conflict"
    await ws.send_json({"type": "cancel"})
    cancelled = await _events_until(ws, {"error", "done"})
    assert cancelled[-1]["data"]["code"] == "cancelled"
    assert queued.cancelled == 1

    # the socket (and the session) carry on
    queued.push("Still here.")
    await ws.send_json({"type": "chat", "message": "again", "session_id": session["id"]})
    events = await _events_until(ws, {"done", "error"})
    assert events[-1]["type"] == "done"
    assert events[-1]["data"]["response"] == "Still here."
    await ws.close()

    full = await (await client.get(f"/api/sessions/{session['id']}")).json()
    assert [m["content"] for m in full["messages"]] == ["hi", "Hello", "again", "Still here."]


async def test_ws_bad_messages_get_error_events(
    make_client: Any, paths: Paths, queued: type[QueuedProvider]
) -> None:
    client = await _client(make_client, paths)
    ws = await client.ws_connect("/api/ws")
    await ws.send_str("{not json")
    assert (await _events_until(ws, {"error"}))[-1]["data"]["code"] == "invalid_request"
    await ws.send_json({"type": "dance"})
    assert (await _events_until(ws, {"error"}))[-1]["data"]["code"] == "invalid_request"
    await ws.send_json({"type": "chat"})
    error = (await _events_until(ws, {"error"}))[-1]["data"]
    assert error == {"code": "invalid_request", "message": "Missing required parameter: message"}
    await ws.send_json({"type": "chat", "message": "x", "session_id": "missing"})
    assert (await _events_until(ws, {"error"}))[-1]["data"]["code"] == "not_found"
    await ws.send_json({"type": "chat", "message": "x", "include_memory": "no"})
    assert (await _events_until(ws, {"error"}))[-1]["data"]["code"] == "invalid_request"
    await ws.send_json({"type": "ping"})
    assert (await _events_until(ws, {"pong"}))[-1]["type"] == "pong"
    await ws.close()


async def test_ws_closed_by_shutdown(
    make_client: Any, paths: Paths, queued: type[QueuedProvider]
) -> None:
    client = await _client(make_client, paths)
    ws = await client.ws_connect("/api/ws")
    gate = Gate()
    queued.push(gate)
    await ws.send_json({"type": "chat", "message": "hang"})
    await asyncio.wait_for(gate.reached.wait(), 5)
    await client.close()  # server shutdown closes the socket and cancels the answer
    assert queued.cancelled == 1
