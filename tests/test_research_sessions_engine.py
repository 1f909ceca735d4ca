"""Research sessions on the builtin engine over SciFact: clarifying questions are about each
topic and what the notes say, answers change the plan, and an execute cut by a crash resumes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from localresearch import extractive
from localresearch.access.roles import ALL, Principal
from localresearch.paths import Paths
from localresearch.research_sessions.flow import SessionService
from localresearch.research_sessions.settings import SessionSettings
from localresearch.research_sessions.store import Change, Task
from localresearch.runtime import Runtime
from localresearch.server.keys import RUNTIME
from tests.fakes.queued_provider import QueuedProvider
from tests.fakes.search_apis import KEY, SearchFake, site_app
from tests.fakes.search_scifact import (
    SCIFACT,
    research_config,
    scifact_available,
    scifact_runtime,
    write_corpus,
)
from tests.fakes.servers import FakeServer, Reply, json_reply, openai_stream

pytestmark = pytest.mark.skipif(not scifact_available(), reason="SciFact data set not present")

API = "/api/research/sessions"
TOPIC = "How does vitamin B12 deficiency affect homocysteine levels?"
ALICE = Principal("key_alice", "user", ALL - {"admin"}, "key")
BUILTIN = SessionSettings("builtin", "extractive", "extractive", "none", max_results=6)
NARROW = "Focus on mechanisms in animal models and cell studies; a brief overview"
BROAD = "Focus on clinical trials in patients since 2010, exclude animal models; a detailed review"


def _topics(count: int) -> list[str]:
    """The first SciFact test claims that have relevant documents (so the notes hold them),
    leaving out restatements of an earlier claim (SciFact pairs a claim with its negation)."""
    lines = (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]
    wanted = list(dict.fromkeys(line.split("\t")[0] for line in lines))
    claims = {}
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            claims[doc["_id"]] = doc["text"]
    chosen: list[str] = []
    for claim in (claims[q] for q in wanted if q in claims):
        stems = _content_stems(claim)
        if all(
            len(stems & _content_stems(c)) / len(stems | _content_stems(c)) < 0.5 for c in chosen
        ):
            chosen.append(claim)
    return chosen[:count]


@pytest.fixture
async def runtime(tmp_path: Path, paths: Paths) -> AsyncIterator[Runtime]:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, extra=120, queries=20)
    async with scifact_runtime(research_config(corpus, dimensions=4), paths) as rt:
        yield rt


def _service(rt: Runtime) -> SessionService:
    assert rt.research_sessions is not None
    return rt.research_sessions


def _content_stems(text: str) -> set[str]:
    return {
        extractive.stem(w.lower())
        for w in extractive.words(text)
        if w.lower() not in extractive.STOPWORDS and len(w) > 2
    }


async def test_questions_are_topic_specific_and_answers_change_the_plan(runtime: Runtime) -> None:
    service = _service(runtime)
    topics = _topics(20)
    assert len(topics) == 20
    every_question: dict[str, str] = {}
    for topic in topics:
        row = await service.create(ALICE, BUILTIN)
        asked = await service.questions(row.id, ALICE, topic)
        lines = asked.questions.splitlines()
        assert 3 <= len(lines) <= 5, asked.questions
        topic_terms = _content_stems(topic)
        for line in lines:
            # Every question names the topic's own terms…
            assert _content_stems(line) & topic_terms, (topic, line)
            # …and no other topic got the same question.
            assert line not in every_question, (topic, every_question.get(line))
            every_question[line] = topic
        # Two different answers give two different plans.
        plans = []
        for answer in (NARROW, BROAD):
            fork = await service.create(ALICE, BUILTIN)
            await service.questions(fork.id, ALICE, topic)
            await service.feedback(fork.id, ALICE, answer)
            plans.append(await service.plan(fork.id, ALICE))
        narrow, broad = plans
        assert [t.query for t in narrow.tasks] != [t.query for t in broad.tasks], topic
        assert len(narrow.tasks) == 3 and len(broad.tasks) == 6
        assert narrow.tasks[0].focus.lower().startswith("mechanisms")
        assert broad.tasks[0].focus.lower().startswith("clinical")
        assert all("2010" in t.query for t in broad.tasks)
        assert not any("animal" in t.query.lower() for t in broad.tasks)


async def test_an_interrupted_execute_resumes_on_restart(tmp_path: Path, paths: Paths) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, extra=60, queries=10)
    text = research_config(corpus, dimensions=4)
    topic = _topics(1)[0]
    async with scifact_runtime(text, paths) as rt:
        service = _service(rt)
        row = await service.create(ALICE, BUILTIN)
        await service.questions(row.id, ALICE, topic)
        await service.feedback(row.id, ALICE, "")
        planned = await service.plan(row.id, ALICE)
        # As a daemon killed mid-execute leaves it: executing, the first task's result saved.
        await service.store.update(
            row.id,
            Change({"phase": "executing"}, ("progress", {"phase": "executing", "progress": 0,
                                                          "message": "Executing"})),
        )  # fmt: skip
        first: Task = planned.tasks[0]
        engine = service._engine(BUILTIN, "extractive")
        await service._run_task(planned, BUILTIN, engine, 0, first)
        before = await service.store.events(row.id)
    # A new daemon over the same database picks the session up and finishes it.
    async with scifact_runtime(text, paths) as rt:
        service = _service(rt)
        task = service._running.get(row.id)
        assert task is not None, "the executing session was not resumed"
        done = await task
        assert done.phase == "completed" and done.progress == 100
        assert done.final_report.startswith("# ")
        events = await service.store.events(row.id)
        assert [e.id for e in events] == list(range(1, len(events) + 1))
        assert events[: len(before)] == before  # every earlier event intact
        assert events[-1].event == "final-report"
        # The first task ran once: its saved result was reused, so no progress event for it.
        messages = [e.data.get("message", "") for e in events[len(before) :]]
        assert not any(m.startswith("Task 1 of") for m in messages)
        assert any(m.startswith(f"Task {len(planned.tasks)} of") for m in messages)


async def test_with_a_model_the_model_writes_questions_and_plan(
    tmp_path: Path, paths: Paths, queued: type[QueuedProvider]
) -> None:
    from localresearch.config import load_config
    from localresearch.research_sessions.settings import resolve

    corpus = tmp_path / "corpus"
    write_corpus(corpus, extra=40, queries=10)
    text = research_config(corpus, dimensions=3) + '\n[llm]\nprovider = "queued"\n'
    topic = _topics(1)[0]
    async with scifact_runtime(text, paths) as rt:
        service = _service(rt)
        settings = await resolve(load_config(paths.config_file), {"provider": "queued"})
        assert settings.provider == "queued" and not settings.builtin
        row = await service.create(ALICE, settings)
        written = ["Which tissue matters most?", "Since when?", "Which journals do you trust?"]
        queued.push(json.dumps({"questions": written}))
        asked = await service.questions(row.id, ALICE, topic)
        assert asked.questions == "1. Which tissue matters most?\n2. Since when?\n" \
            "3. Which journals do you trust?"  # fmt: skip
        prompt = queued.requests[-1].messages[-1].content
        assert topic in prompt and "scope, time range, depth" in prompt
        await service.feedback(row.id, ALICE, "Only human studies after 2012")
        tasks = [{"query": "human trials 2012", "focus": "Human evidence"}]
        queued.push("not json at all")  # repaired on the second try
        queued.push(
            json.dumps({"reportPlan": "# Research Plan\n\n1. Human evidence", "tasks": tasks})
        )
        planned = await service.plan(row.id, ALICE)
        assert [t.to_dict() for t in planned.tasks] == tasks
        assert planned.report_plan.startswith("# Research Plan")
        assert "Only human studies after 2012" in queued.requests[-1].messages[1].content
        # A model that never answers usably: the builtin questions, still about the topic.
        other = await service.create(ALICE, settings)
        queued.push("nope")
        queued.push("still nope")
        fallback = await service.questions(other.id, ALICE, topic)
        assert len(fallback.questions.splitlines()) >= 3
        assert _content_stems(fallback.questions) & _content_stems(topic)


async def test_the_specs_exact_settings_on_a_daemon_set_up_for_them(
    tmp_path: Path,
    write_config: Any,
    make_client: Any,
    fake_server: FakeServer,
    aiohttp_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The spec's Complete Research Flow settings (openai, gpt-4o, gpt-4o-mini, tavily) against a
    daemon whose [llm] is OpenAI and whose web search is Tavily (both protocol fakes): the
    models write questions, plan, summary and report; Tavily's pages are sources."""
    site = await aiohttp_server(site_app())
    search = SearchFake(pages=str(site.make_url("")).rstrip("/"))
    tavily = await aiohttp_server(search.api_app("tavily"))
    monkeypatch.setenv("SESSIONS_TEST_OPENAI", "sk-test")
    monkeypatch.setenv("SESSIONS_TEST_TAVILY", KEY)
    corpus = tmp_path / "corpus"
    write_corpus(corpus, extra=20, queries=5)
    text = research_config(
        corpus,
        web_search="tavily",
        web_search_url=str(tavily.make_url("")).rstrip("/"),
        web_search_key_env="SESSIONS_TEST_TAVILY",
    )
    write_config(
        text
        + f'\n[llm]\nprovider = "openai"\nmodel = "gpt-4o"\nbase_url = "{fake_server.url}/v1"\n'
        'api_key_env = "SESSIONS_TEST_OPENAI"\n'
    )
    models = {"data": [{"id": "gpt-4o"}, {"id": "gpt-4o-mini"}]}
    fake_server.queue("/v1/models", json_reply(models), json_reply(models))

    def reply(obj: Any) -> Reply:
        return Reply(chunks=openai_stream([obj if isinstance(obj, str) else json.dumps(obj)]))

    questions = ["Which B12 outcomes matter?", "Which years?", "Trust web pages?"]
    task = {"query": "vitamin B12 homocysteine", "focus": "B12 and homocysteine"}
    summary = {"summary": "B12 lowers homocysteine.", "keyFinding": "B12 lowers it.",
               "points": [{"text": "B12 lowers homocysteine.", "source": 1}]}  # fmt: skip
    fake_server.queue(
        "/v1/chat/completions",
        reply({"questions": questions}),
        reply({"reportPlan": "# Research Plan\n\n1. B12", "tasks": [task]}),
        reply(summary),
        reply("# B12 and homocysteine\n\nB12 lowers homocysteine [1].\n"),
    )
    client = await make_client()
    await client.app[RUNTIME].memory.wait_ready()
    spec_settings = {"provider": "openai", "thinkingModel": "gpt-4o",
                     "taskModel": "gpt-4o-mini", "searchProvider": "tavily"}  # fmt: skip
    created = await (await client.post(API, json={"settings": spec_settings})).json()
    assert created["success"], created
    session = created["data"]["sessionId"]
    asked = await (await client.post(f"{API}/{session}/questions", json={"topic": TOPIC})).json()
    assert asked["data"]["questions"].splitlines()[0] == "1. Which B12 outcomes matter?"
    await client.post(f"{API}/{session}/feedback", json={"feedback": "Since 2000"})
    plan = await (await client.post(f"{API}/{session}/plan")).json()
    assert plan["data"]["tasks"] == [task]
    done = await (await client.post(f"{API}/{session}/execute")).json()
    assert done["success"], done
    assert done["data"]["finalReport"].startswith("# B12 and homocysteine")
    urls = [s["url"] for r in done["data"]["results"] for s in r["sources"]]
    assert f"{search.pages}/page/1" in urls  # a Tavily result, read from its page
    sent = [r.body for r in fake_server.requests if r.path == "/v1/chat/completions"]
    assert [b["model"] for b in sent] == ["gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o"]
    assert TOPIC in sent[0]["messages"][-1]["content"]


async def test_an_idle_stream_gets_keep_alive_comments(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localresearch.server import sse

    monkeypatch.setattr(sse, "KEEPALIVE_SECONDS", 0.2)
    client = await make_client()
    created = await (await client.post(API, json={})).json()
    session = created["data"]["sessionId"]
    response = await client.get(f"{API}/{session}/stream")
    assert response.headers["Cache-Control"] == "no-cache, no-transform"
    seen = b""
    while seen.count(b": keep-alive") < 2:
        seen += await asyncio.wait_for(response.content.readany(), 5)
    assert seen.startswith(b"event: connected\ndata: ")
    response.close()
