"""`research ask` against a real daemon whose model (a loopback server speaking OpenAI's wire
format) restates the question in words no note holds: the terminal and `--json` show the
model's sentence flagged and the notes' own words quoted, cited at their file:line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.daemon_fixture import DaemonHandle
from tests.fakes.servers import respond_openai_stream

TEA = "Green tea steeps for two minutes at eighty degrees."
RESTATED = "Green tea strengthens the immune system and prevents colds."
LABEL = "Quoted from your notes"


async def _chat(request: web.Request) -> web.StreamResponse:
    return await respond_openai_stream(request, RESTATED, usage=(40, 9))


async def _models(_request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "local"}]})


async def test_ask_shows_the_notes_quoted_beside_an_unbacked_model_answer(
    tmp_path: Path, daemon_env: DaemonHandle, aiohttp_server: Any
) -> None:
    app = web.Application()
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/v1/chat/completions", _chat)
    server = await aiohttp_server(app)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "tea.md").write_text(
        f"# Tea\n\n{TEA}\nBlack tea steeps for four minutes in boiling water.\n"
    )
    (daemon_env.home / "config.toml").write_text(
        f"[memory]\npaths = [{json.dumps(str(notes))}]\nwatch = false\n\n"
        f'[llm]\nprovider = "openai"\nmodel = "local"\ncontext_tokens = 4096\n'
        f'base_url = "http://127.0.0.1:{server.port}/v1"\n'
    )
    await asyncio.to_thread(daemon_env.start)
    question = "How long does green tea steep?"
    try:
        done = await asyncio.to_thread(daemon_env.cli, "ask", "--json", question, timeout=120)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["evidence"]["reason"] == "unsupported"
        model, *quoted = answer["sentences"]
        assert model["text"] == RESTATED and not model["supported"] and not model["quoted"]
        assert quoted and all(s["quoted"] and s["supported"] for s in quoted)
        assert quoted[0]["text"] == TEA
        first = answer["citations"][0]
        assert first["file"].endswith("tea.md") and first["line_start"] == 3
        assert first["n"] in quoted[0]["citations"]
        assert answer["answer"].startswith(RESTATED) and LABEL in answer["answer"]

        text = await asyncio.to_thread(daemon_env.cli, "ask", question, timeout=120)
        assert text.returncode == 0, text.stderr
        out = " ".join(text.stdout.split())
        assert TEA in out and "tea.md" in out
        assert "is your notes' own words: most of the model's answer is not in your notes" in out
        assert "Not supported by any source" in out and RESTATED in out
    finally:
        await asyncio.to_thread(daemon_env.stop)
