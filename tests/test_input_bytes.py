"""Input checks at the byte level: bodies are strict UTF-8, integers and nesting are bounded,
NUL never gets in through escapes, other encodings or the query string; a stream that already
began ends with an `error` event instead of a second HTTP response inside it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from localresearch.config import load_config
from localresearch.server.app import make_app
from localresearch.server.requests import json_body, parse_json_object

BODY_ENDPOINTS = [
    "/api/chat",
    "/api/chat/stream",
    "/api/memory/sources",
    "/api/research/deep",
    "/api/sessions",
    "/api/schedules",
    "/api/memory/reindex",
]


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(await json_body(request))


async def _breaks_midstream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"data: {}\n\n")
    raise RuntimeError("broke after the headers went out")


async def _ws_breaks(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str('{"type": "pong"}')
    raise RuntimeError("broke after the upgrade")


@pytest.fixture
async def client(aiohttp_client: Any, paths: Any) -> Any:
    config = load_config(paths.config_file, env={"LOCALRESEARCH_HEARTBEAT__ENABLED": "false"})
    app = make_app(config, paths)
    app.router.add_post("/test/echo", _echo)
    app.router.add_get("/test/midstream", _breaks_midstream)
    app.router.add_get("/test/ws-breaks", _ws_breaks)
    return await aiohttp_client(app)


async def _refused(response: aiohttp.ClientResponse, status: int, *words: str) -> str:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"}, body
    message = str(body["error"]["message"])
    for word in words:
        assert word in message, message
    return message


async def _post(client: Any, path: str, data: bytes, content_type: str = "application/json") -> Any:
    return await client.post(path, data=data, headers={"Content-Type": content_type})


async def test_utf16_body_with_nul_is_refused_not_stored(client: Any) -> None:
    body = json.dumps({"message": "a\u0000b"}).encode("utf-16")
    await _refused(await _post(client, "/test/echo", body), 400, "UTF-8")
    body = json.dumps({"message": "plain"}).encode("utf-16-le")
    await _refused(await _post(client, "/test/echo", body), 400, "UTF-8")


async def test_other_charsets_are_415(client: Any) -> None:
    response = await _post(
        client, "/test/echo", b'{"message": "x"}', "application/json; charset=latin-1"
    )
    await _refused(response, 415, "UTF-8")
    ok = await _post(client, "/test/echo", b'{"m": "x"}', "application/json; charset=utf-8")
    assert ok.status == 200


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"message": "\xed\xa0\x80"}', ["UTF-8"]),  # a raw (encoded) surrogate
        (b'{"message": "caf\xe9"}', ["UTF-8"]),  # Latin-1
        (b'\xef\xbb\xbf{"message": "x"}', ["byte-order mark"]),
        (b'{"message": "\\ud800"}', ["surrogate"]),
        (b'{"message": "a\\u0000b"}', ["NUL"]),
        (b'{"a\\u0000": 1}', ["NUL"]),
        (b'{"n": NaN}', ["NaN"]),
        (b'{"n": -Infinity}', ["Infinity"]),
        (b'{"n": ' + b"9" * 4301 + b"}", ["4301 digits", "64 bits"]),
        (b'{"n": -' + b"1" * 25 + b"}", ["25 digits"]),
        (b'{"a": ' + b"[" * 65 + b"]" * 65 + b"}", ["nested more than 64"]),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", ["nested"]),
    ],
)
async def test_malformed_text_is_400_naming_the_problem(
    client: Any, raw: bytes, words: list[str]
) -> None:
    await _refused(await _post(client, "/test/echo", raw), 400, *words)


async def test_ordinary_bodies_still_pass(client: Any) -> None:
    data = {"m": "naïve ☕ 𝄞", "n": -(2**63), "f": 1.5e300, "deep": [[[[1]]]], "u": "\u00e9"}
    response = await _post(client, "/test/echo", json.dumps(data).encode())
    assert response.status == 200
    assert await response.json() == data


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
async def test_a_huge_integer_is_400_on_every_body_endpoint(client: Any, path: str) -> None:
    raw = b'{"message": "x", "query": "x", "path": "/tmp", "n": ' + b"7" * 4400 + b"}"
    await _refused(await _post(client, path, raw), 400, "digits")


async def test_out_of_range_integer_fields_name_the_field(client: Any) -> None:
    raw = json.dumps({"query": "b12", "dimensions": 2**63}).encode()
    await _refused(await _post(client, "/api/research/deep", raw), 400, "dimensions")


@pytest.mark.parametrize(
    "url",
    [
        "/api/memory/search?q=a%00b",
        "/api/memory/search?q=a&limit=1%00",
        "/api/sessions?limit=%00",
        "/api/research/deep?status=a%00",
        "/api/sessions/a%00b",
    ],
)
async def test_nul_in_the_url_is_400(client: Any, url: str) -> None:
    await _refused(await client.get(url), 400, "NUL")


async def test_huge_query_integers_and_ids(client: Any) -> None:
    await _refused(await client.get("/api/sessions?limit=" + "9" * 5000), 400, "limit")
    response = await client.get("/api/sessions/" + "x" * 4000)
    await _refused(response, 404)
    response = await client.get("/api/research/deep/" + "r" * 4000 + "/status")
    await _refused(response, 404)


async def test_last_event_id_beyond_64_bits_is_400_before_the_stream(client: Any) -> None:
    start = await _post(client, "/api/research/deep", b'{"query": "vitamin b12"}')
    job = (await start.json())["researchId"]
    for value in ("9223372036854775808", "9" * 5000, "-1", "1e3"):
        response = await client.get(f"/api/research/deep/{job}", headers={"Last-Event-ID": value})
        await _refused(response, 400, "Last-Event-ID")
    response = await client.get(f"/api/research/deep/{job}?lastEventId=9223372036854775808")
    await _refused(response, 400, "Last-Event-ID")


async def test_a_stream_that_began_ends_with_an_error_event(client: Any) -> None:
    response = await client.get("/test/midstream")
    assert response.status == 200
    text = await response.text()
    assert "HTTP/1.1" not in text
    frames = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert frames[-1]["type"] == "error"
    assert frames[-1]["data"]["code"] == "internal_error"
    assert "request id" in frames[-1]["data"]["message"]


async def test_a_websocket_that_fails_closes_with_1011_not_an_http_response(
    client: Any,
) -> None:
    ws = await client.ws_connect("/test/ws-breaks")
    first = await ws.receive(timeout=10)
    assert first.type == aiohttp.WSMsgType.TEXT and json.loads(first.data)["type"] == "pong"
    closing = await ws.receive(timeout=10)
    assert closing.type == aiohttp.WSMsgType.CLOSE, closing
    assert ws.close_code == 1011
    assert "request id" in (closing.extra or "")


async def test_websocket_huge_integer_and_bad_text_are_error_events(client: Any) -> None:
    ws = await client.ws_connect("/api/ws")
    await ws.send_str('{"type": "chat", "message": "x", "n": ' + "5" * 4400 + "}")
    event = json.loads((await ws.receive(timeout=10)).data)
    assert event["type"] == "error" and "digits" in event["data"]["message"]
    await ws.send_str('{"type": "chat", "message": "\\u0000"}')
    event = json.loads((await ws.receive(timeout=10)).data)
    assert event["type"] == "error" and "NUL" in event["data"]["message"]
    await ws.send_str('{"type": "ping"}')
    assert json.loads((await ws.receive(timeout=10)).data)["type"] == "pong"
    await ws.close()


async def test_websocket_cancel_right_after_chat_always_answers(client: Any) -> None:
    """The cancel may reach the daemon before the answer's task ran a single step."""
    ws = await client.ws_connect("/api/ws")
    for _ in range(30):
        await ws.send_str('{"type": "chat", "message": "what is in my notes?"}')
        await ws.send_str('{"type": "cancel"}')
        last: dict[str, Any] = {}
        while last.get("type") not in ("done", "error"):
            last = json.loads((await ws.receive(timeout=10)).data)
        # a final event every time: the answer finished first, or it was cancelled
        assert last["type"] == "done" or last["data"]["code"] == "cancelled", last
        await asyncio.sleep(0)
    await ws.close()


async def test_long_source_paths_are_400_naming_the_field(client: Any) -> None:
    for path in ("/tmp/" + "a" * 300, "/tmp/" + "/b" * 3000):
        raw = json.dumps({"path": path}).encode()
        await _refused(await _post(client, "/api/memory/sources", raw), 400, "path", "too long")
        await _refused(
            await client.delete("/api/memory/sources", params={"path": path}), 400, "path"
        )


def test_parse_json_object_keeps_its_interface() -> None:
    assert parse_json_object(b'{"a": 1}') == {"a": 1}
    assert parse_json_object('{"a": [1, {"b": "c"}]}') == {"a": [1, {"b": "c"}]}
