"""A research session's `settings.language`: a model (a local server speaking the OpenAI wire
format) is asked to write questions, plan, findings and report in it; the builtin engine, which
cannot translate, accepts it and says so in the session's data and its final-report event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from localresearch.server.keys import RUNTIME
from tests.fakes.servers import FakeServer, Reply, json_reply, openai_stream

API = "/api/research/sessions"
TOPIC = "How does SQLite keep readers and a writer apart?"


def _notes(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "sqlite.md").write_text(
        "# SQLite\n\nSQLite keeps a whole database in one file.\n\n"
        "WAL mode lets readers continue while one writer commits.\n",
        encoding="utf-8",
    )
    return notes


def _memory(notes: Path) -> str:
    return f"[memory]\npaths = [{json.dumps(str(notes))}]\nwatch = false\n"


async def _flow(client: Any, settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create → questions → feedback → plan → execute; the created answer and the session."""
    created = await (await client.post(API, json={"settings": settings})).json()
    assert created["success"], created
    session = created["data"]["sessionId"]
    for path, body in (("questions", {"topic": TOPIC}), ("feedback", {"feedback": "Since 2010"}),
                       ("plan", None), ("execute", None)):  # fmt: skip
        answer = await (await client.post(f"{API}/{session}/{path}", json=body)).json()
        assert answer["success"], (path, answer)
    detail = await (await client.get(f"{API}/{session}")).json()
    return created["data"], detail["data"]


async def test_a_model_is_asked_for_the_language(
    tmp_path: Path,
    write_config: Any,
    make_client: Any,
    fake_server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LANGUAGE_TEST_OPENAI", "sk-test")
    write_config(
        _memory(_notes(tmp_path))
        + f'\n[llm]\nprovider = "openai"\nmodel = "gpt-4o"\nbase_url = "{fake_server.url}/v1"\n'
        'api_key_env = "LANGUAGE_TEST_OPENAI"\n'
    )
    models = {"data": [{"id": "gpt-4o"}]}
    fake_server.queue("/v1/models", json_reply(models))

    def reply(obj: Any) -> Reply:
        return Reply(chunks=openai_stream([obj if isinstance(obj, str) else json.dumps(obj)]))

    text = "SQLite garde toute la base dans un seul fichier."
    fake_server.queue(
        "/v1/chat/completions",
        reply({"questions": ["Quelle période ?", "Quelles sources ?", "Quelle profondeur ?"]}),
        reply({"reportPlan": "# Plan de recherche\n\n1. WAL",
               "tasks": [{"query": "SQLite WAL", "focus": "Le mode WAL"}]}),
        reply({"summary": text, "keyFinding": text, "points": [{"text": text, "source": 1}]}),
        reply(f"# SQLite\n\n{text} [1]\n"),
    )  # fmt: skip
    client = await make_client()
    await client.app[RUNTIME].memory.wait_ready()
    created, session = await _flow(client, {"provider": "openai", "language": "fr"})
    assert "languageNote" not in created and "languageNote" not in session
    assert session["settings"]["language"] == "fr" and session["reportLanguage"] == "fr"
    assert session["questions"].startswith("1. Quelle période ?")
    sent = [r.body for r in fake_server.requests if r.path == "/v1/chat/completions"]
    assert len(sent) == 4  # questions, plan, the task's findings, the report
    for body in sent:
        prompt = "\n".join(m["content"] for m in body["messages"])
        assert "language with ISO code 'fr'" in prompt, prompt


async def test_the_builtin_engine_accepts_the_language_and_says_it_cannot_translate(
    tmp_path: Path, write_config: Any, make_client: Any
) -> None:
    write_config(_memory(_notes(tmp_path)))
    client = await make_client()
    await client.app[RUNTIME].memory.wait_ready()
    created, session = await _flow(client, {"language": "de"})
    for where in (created, session):
        assert "cannot translate" in where["languageNote"]
        assert "'de'" in where["languageNote"] and "language of your notes" in where["languageNote"]
    assert session["settings"]["language"] == "de"  # accepted and kept, not dropped
    assert session["reportLanguage"] == "notes"
    assert "WAL mode lets readers continue" in session["finalReport"]  # the notes' own words
    stream = await client.get(f"{API}/{session['id']}/stream")
    seen = b""
    while b"event: final-report" not in seen:
        seen += await stream.content.readany()
    stream.close()
    frame = seen.split(b"event: final-report\ndata: ", 1)[1].split(b"\n\n", 1)[0]
    final = json.loads(frame)
    assert final["reportLanguage"] == "notes" and "cannot translate" in final["languageNote"]
