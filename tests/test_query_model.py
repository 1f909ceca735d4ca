"""A query's own `model` against a real daemon whose provider is a local server speaking the
OpenAI wire format (/v1/models and streamed chat completions): a model the server lists is used
for that query only; one it does not list is a 400 naming the field and the choices."""

from __future__ import annotations

import asyncio
import http.client
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.daemon_fixture import DaemonHandle, call_json
from tests.fakes.servers import respond_openai_stream

SERVED = ["gpt-4o", "gpt-4o-mini"]


class Model:
    """Answers every research step and records the model each request named."""

    def __init__(self) -> None:
        self.models: list[str] = []

    @staticmethod
    def reply_for(prompt: str) -> str:
        if "research dimensions" in prompt:
            return json.dumps({"dimensions": ["Storage"]})
        if "\nDimension: " in prompt:
            text = "SQLite keeps a whole database in one file."
            return json.dumps(
                {"summary": text, "keyFinding": text, "points": [{"text": text, "source": 1}]}
            )
        if "still missing" in prompt:
            return json.dumps({"gaps": [], "newDimensions": []})
        return "SQLite keeps a whole database in one file [1].\n"

    async def list(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": m} for m in SERVED]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.models.append(body["model"])
        text = self.reply_for(body["messages"][-1]["content"])
        return await respond_openai_stream(request, text)


def _lines(port: int, path: str, body: Any) -> list[Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})  # fmt: skip
        raw = conn.getresponse().read()
    finally:
        conn.close()
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


async def test_a_query_chooses_a_served_model_for_itself_only(
    tmp_path: Path, daemon_env: DaemonHandle, aiohttp_server: Any
) -> None:
    model = Model()
    app = web.Application()
    app.router.add_get("/v1/models", model.list)
    app.router.add_post("/v1/chat/completions", model.chat)
    server = await aiohttp_server(app)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "sqlite.md").write_text("# SQLite\n\nSQLite keeps a whole database in one file.\n")
    (daemon_env.home / "config.toml").write_text(
        f"[memory]\npaths = [{json.dumps(str(notes))}]\nwatch = false\n\n"
        "[research]\ndimensions = 3\nmax_rounds = 0\n\n"
        f'[llm]\nprovider = "openai"\nmodel = "gpt-4o"\n'
        f'base_url = "http://127.0.0.1:{server.port}/v1"\n'
    )
    await asyncio.to_thread(daemon_env.start)
    port = daemon_env.port
    question = "How does SQLite store data?"
    try:
        # An unknown model: 400 naming the field and the models the provider serves.
        status, body = await asyncio.to_thread(
            call_json, port, "POST", "/query", {"version": "1", "query": question, "model": "gpt-5"}
        )
        assert status == 400, body
        assert "model" in body["detail"] and "gpt-5" in body["detail"]
        assert "gpt-4o, gpt-4o-mini" in body["detail"]
        assert model.models == []  # refused before any research ran
        # Another provider's model is refused too (no network beyond what is configured).
        status, body = await asyncio.to_thread(
            call_json, port, "POST", "/query",
            {"version": "1", "query": question, "model": "anthropic/claude"},
        )  # fmt: skip
        assert status == 400 and "model" in body["detail"], body

        # A served model, bare or as provider/model: every request of that query names it.
        status, result = await asyncio.to_thread(
            call_json, port, "POST", "/query",
            {"version": "1", "query": question, "model": "gpt-4o-mini"},
        )  # fmt: skip
        assert status == 200, result
        assert "SQLite keeps a whole database in one file" in result["answer"]
        used = list(model.models)
        assert used and set(used) == {"gpt-4o-mini"}

        # The next query, without `model`, is back on the configured one.
        status, result = await asyncio.to_thread(
            call_json, port, "POST", "/query", {"version": "1", "query": question}
        )
        assert status == 200, result
        assert set(model.models[len(used) :]) == {"gpt-4o"}

        # The same field on the stream, batch and background forms.
        seen = len(model.models)
        objects = await asyncio.to_thread(
            _lines, port, "/query/stream",
            {"version": "1", "query": question, "model": "openai/gpt-4o-mini"},
        )  # fmt: skip
        assert "answer" in objects[-1], objects[-1]
        assert set(model.models[seen:]) == {"gpt-4o-mini"}
        status, body = await asyncio.to_thread(
            call_json, port, "POST", "/query/batch",
            {"version": "1", "queries": [
                {"version": "1", "query": question},
                {"version": "1", "query": question, "model": "nope"}]},
        )  # fmt: skip
        assert status == 400 and "nope" in body["detail"], body
        seen = len(model.models)
        status, accepted = await asyncio.to_thread(
            call_json, port, "POST", "/query/async",
            {"version": "1", "query": question, "model": "gpt-4o-mini"},
        )  # fmt: skip
        assert status == 200, accepted
        for _ in range(600):
            status, state = await asyncio.to_thread(
                call_json, port, "GET", f"/query/{accepted['query_id']}"
            )
            if state["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.05)
        assert state["status"] == "complete", state
        assert set(model.models[seen:]) == {"gpt-4o-mini"}
    finally:
        await asyncio.to_thread(daemon_env.stop)


def test_builtin_serves_only_its_own_model(daemon_env: DaemonHandle) -> None:
    daemon_env.start()
    try:
        status, body = call_json(
            daemon_env.port, "POST", "/query", {"version": "1", "query": "x", "model": "gpt-4o"}
        )
        assert status == 400 and "builtin" in body["detail"] and "extractive" in body["detail"]
        status, body = call_json(
            daemon_env.port, "POST", "/query",
            {"version": "1", "query": "What is SQLite?", "model": "builtin/extractive"},
        )  # fmt: skip
        assert status == 200, body
    finally:
        daemon_env.stop()
