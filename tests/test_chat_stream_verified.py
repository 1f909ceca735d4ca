"""What a client shows at the end of a streamed answer is the verified answer: the `delta` events
carry the model's text as it came, the `done` event the corrected text and per-sentence support,
and `research ask` (on a terminal and piped) ends with the corrected text. A real daemon and a
loopback server speaking OpenAI's streaming format with a model that cites the wrong passage."""

from __future__ import annotations

import asyncio
import json

from tests.daemon_fixture import DaemonHandle
from tests.fakes.servers import FakeServer, Reply, openai_stream

NOTE = """# Storage

SQLite runs in WAL mode so that readers never block the writer.
"""
# Passage [1] is the only one there is; the model cites [3] on a supported sentence and [1] on
# one no passage supports.
PIECES = [
    "SQLite runs in WAL mode so readers ",
    "never block the writer [3]. ",
    "The moon is made of green cheese [1].",
]
STREAMED = "".join(PIECES)
CORRECTED = (
    "SQLite runs in WAL mode so readers never block the writer [1]. "
    "The moon is made of green cheese."
)


def _setup(daemon_env: DaemonHandle, server: FakeServer) -> None:
    notes = daemon_env.home / "notes"
    notes.mkdir()
    (notes / "storage.md").write_text(NOTE, encoding="utf-8")
    (daemon_env.home / "config.toml").write_text(
        f'[memory]\npaths = ["{notes}"]\nwatch = false\n\n'
        f'[llm]\nprovider = "openai"\nbase_url = "{server.url}/v1"\nmodel = "fake"\n',
        encoding="utf-8",
    )
    for _ in range(3):
        server.queue("/v1/chat/completions", Reply(chunks=openai_stream(PIECES, pause=0.05)))


def _sse(raw: str) -> list[dict[str, object]]:
    return [json.loads(line[5:]) for line in raw.splitlines() if line.startswith("data:")]


async def test_streamed_then_verified_over_sse_websocket_and_cli(
    daemon_env: DaemonHandle, fake_server: FakeServer
) -> None:
    import aiohttp

    _setup(daemon_env, fake_server)
    try:
        # Piped `research ask`: the verified answer, not the raw stream.
        piped = await asyncio.to_thread(daemon_env.cli, "ask", "how does sqlite write?")
        assert piped.returncode == 0, piped.stderr
        assert piped.stdout.startswith(CORRECTED + "\n"), piped.stdout
        assert "[3]" not in piped.stdout and "cheese [1]" not in piped.stdout
        assert "[1] storage.md:3" in piped.stdout
        assert "? The moon is made of green cheese." in piped.stdout  # flagged
        async with aiohttp.ClientSession() as http:
            async with http.post(
                daemon_env.url + "/api/chat/stream", json={"message": "how does sqlite write?"}
            ) as resp:
                events = _sse(await resp.text())
            deltas = "".join(e["data"]["text"] for e in events if e["type"] == "delta")  # type: ignore[index]
            assert deltas == STREAMED
            done = events[-1]
            assert done["type"] == "done"
            data = done["data"]
            assert isinstance(data, dict)
            assert data["response"] == CORRECTED
            assert [(s["citations"], s["supported"]) for s in data["sentences"]] == [
                ([1], True),
                ([], False),
            ]
            async with http.ws_connect(daemon_env.url + "/api/ws") as ws:
                await ws.send_json({"type": "chat", "message": "how does sqlite write?"})
                streamed = ""
                while True:
                    event = await asyncio.wait_for(ws.receive_json(), 60)
                    if event["type"] == "delta":
                        streamed += event["data"]["text"]
                    elif event["type"] in ("done", "error"):
                        break
            assert streamed == STREAMED
            assert event["type"] == "done" and event["data"]["response"] == CORRECTED
            assert event["data"]["sentences"] == data["sentences"]
    finally:
        await asyncio.to_thread(daemon_env.stop)
