"""A real, trained (small, often wrong) model behind the OpenAI-compatible provider: answers and
reports keep their structure whatever it writes. Structure is asserted, never wording: every
answer sentence is cited or flagged, every citation's quote is at its file:line, a report holds
no JSON and no prompt text. Few and short: the model runs at ~20 tokens/s on an idle 2-core
machine (far less on a loaded one), so replies are capped."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from localresearch.api.research import JobStatus
from localresearch.server.keys import RUNTIME
from tests.daemon_fixture import DaemonHandle
from tests.fakes.realmodel import unavailable_reason

pytestmark = [
    pytest.mark.realmodel,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or ""),
]

NOTES = {
    "sqlite.md": """# SQLite notes

SQLite stores a whole database in one file.
WAL mode allows readers to run concurrently with a single writer.
In WAL mode, changes are appended to a separate write-ahead log file and checkpointed later.
""",
    "quince.md": """# Quince tree care

Quince trees need full sun and well-drained soil.
Water young quince trees weekly during dry spells in their first two summers.
Prune quince in late winter, removing crossing branches and dead wood.
Fire blight is the most serious disease of quince; cut infected shoots well below the damage.
""",
    "marathon.md": """# Marathon training

A sixteen-week plan builds weekly mileage by no more than ten percent a week.
The long run peaks at about 32 kilometres three weeks before race day.
Tapering cuts volume by forty to sixty percent over the final two weeks.
""",
}
PROMPT_TEXT = (
    "JSON shape",
    "Write a well-structured",
    "one sentence",
    "Split the question",
    "Summarise what the passages say",
    "End every sentence",
)
_MARKER = re.compile(r"\[(\d+)\]")


def _notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, text in NOTES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _config(server: str, notes: Path, max_tokens: int = 48) -> str:
    return (
        f'[memory]\npaths = ["{notes}"]\n\n'
        f'[llm]\nprovider = "openai"\nbase_url = "{server}"\nmodel = "qwen"\n'
        f"max_tokens = {max_tokens}\ntemperature = 0.0\n"
        "first_token_timeout = 600.0\nidle_timeout = 300.0\n"
    )


def _norm(text: str) -> str:
    return " ".join(text.split())


def assert_cited_or_flagged(done: dict[str, Any]) -> None:
    """Every claim is cited or flagged; every citation quotes its file at its lines."""
    sentences = done["sentences"]
    assert sentences, done
    for sentence in sentences:
        if sentence["claim"]:
            assert sentence["citations"] or sentence["supported"] is False, sentence
        if sentence["citations"]:
            assert sentence["supported"] is True
    numbers = {c["n"] for c in done["citations"]}
    assert {int(n) for n in _MARKER.findall(done["response"])} <= numbers
    for citation in done["citations"]:
        lines = Path(citation["path"]).read_text(encoding="utf-8").splitlines()
        span = _norm("\n".join(lines[citation["line_start"] - 1 : citation["line_end"]]))
        for piece in citation["text"].split(" … "):
            assert _norm(piece) in span, (piece, citation)


def test_ask_answers_cited_or_flagged(
    realmodel_server: str, daemon_env: DaemonHandle, tmp_path: Path
) -> None:
    notes = _notes(tmp_path)
    (daemon_env.home / "config.toml").write_text(_config(realmodel_server, notes))
    daemon_env.start()
    try:
        result = daemon_env.cli("ask", "--json", "What does WAL mode allow?", timeout=800)
        assert result.returncode == 0, result.stderr
        body = json.loads(result.stdout)
        done = {**body, "response": body["answer"]}
        assert_cited_or_flagged(done)
        assert body["citations"], "a real model's answer about a note carries citations"
        assert body["citations"][0]["file"] == "sqlite.md"
    finally:
        daemon_env.stop()


def test_ask_with_a_small_context_leads_with_its_strongest_passage(
    realmodel_server: str, daemon_env: DaemonHandle, tmp_path: Path
) -> None:
    """The compact prompt (llm.context_tokens = 4096, the server's own): passages beside the
    question, no tools; the answer is prose, cited or flagged, its sources in search rank."""
    notes = _notes(tmp_path)
    config = _config(realmodel_server, notes) + "context_tokens = 4096\n"
    (daemon_env.home / "config.toml").write_text(config)
    daemon_env.start()
    try:
        result = daemon_env.cli("ask", "--json", "What does WAL mode allow?", timeout=800)
        assert result.returncode == 0, result.stderr
        body = json.loads(result.stdout)
        assert_cited_or_flagged({**body, "response": body["answer"]})
        assert body["tools_used"] == [] and not body["answer"].lstrip().startswith(("{", "`"))
        assert body["citations"], "a real model's answer about a note carries citations"
        assert body["citations"][0]["file"] == "sqlite.md"
        numbers = [c["n"] for c in body["citations"]]
        assert numbers == sorted(numbers)  # passages are numbered by the search's rank
    finally:
        daemon_env.stop()


async def test_context_size_from_the_server_and_the_strongest_passage_quoted_or_cited(
    realmodel_server: str,
    tmp_path: Path,
    write_config: Callable[[str], Path],
    make_client: Any,
) -> None:
    """No llm.context_tokens: the size comes from the server's /props (4,096), so the compact
    prompt; whatever the model writes, the answer's first citation is the strongest passage
    (cited by the model, or quoted beside its answer), and every quote stands at its lines."""
    notes = _notes(tmp_path)
    write_config(_config(realmodel_server, notes))
    client = await make_client()
    runtime = client.app[RUNTIME]
    await runtime.memory.wait_ready()
    assert await runtime.chat.provider().context_window() == 4096
    question = "Is SQLite a client-server database spread over many files?"
    resp = await client.post("/api/chat", json={"message": question})
    assert resp.status == 200, await resp.text()
    done = await resp.json()
    assert done["tools_used"] == []  # the compact prompt offers none
    assert_cited_or_flagged(done)
    first = done["citations"][0]
    assert (first["n"], first["file"]) == (1, "sqlite.md"), done
    quoted = [s for s in done["sentences"] if s["quoted"]]
    if done["evidence"] is None:
        assert not quoted and any(1 in s["citations"] for s in done["sentences"]), done
    else:
        assert done["evidence"]["reason"] in ("unsupported", "strongest_uncited")
        assert quoted and 1 in done["evidence"]["citations"], done
        assert "**Quoted from your notes**:" in done["response"]
        text = (notes / "sqlite.md").read_text(encoding="utf-8")
        for sentence in quoted:
            assert sentence["supported"] and sentence["citations"], sentence
            assert _norm(sentence["text"]).rstrip(".") in _norm(text), sentence
        model = [s for s in done["sentences"] if not s["quoted"] and s["claim"]]
        supported = sum(1 for s in model if s["supported"])
        if done["evidence"]["reason"] == "unsupported":
            assert 2 * supported < len(model) or not model, done


async def test_chat_stream_and_cancel_mid_generation(
    realmodel_server: str,
    tmp_path: Path,
    write_config: Callable[[str], Path],
    make_client: Any,
) -> None:
    write_config(_config(realmodel_server, _notes(tmp_path)))
    client = await make_client()
    await client.app[RUNTIME].memory.wait_ready()
    resp = await client.post(
        "/api/chat/stream", json={"message": "How should I prune a quince tree?"}
    )
    assert resp.status == 200
    events = []
    async for raw in resp.content:
        line = raw.decode().strip()
        if line.startswith("data:"):
            events.append(json.loads(line[5:]))
    types = [e["type"] for e in events]
    assert types[0] == "start" and types[-1] == "done", types
    done = events[-1]["data"]
    streamed = "".join(e["data"]["text"] for e in events if e["type"] == "delta")
    assert streamed.strip()
    assert_cited_or_flagged(done)
    # Cancel while the model writes: the socket stays open and the next answer works.
    async with client.ws_connect("/api/ws") as ws:
        await ws.send_json({"type": "chat", "message": "Describe quince care in detail."})
        while True:
            event = await asyncio.wait_for(ws.receive_json(), 600)
            if event["type"] == "delta":
                await ws.send_json({"type": "cancel"})
                break
            assert event["type"] == "start", event
        while event["type"] not in ("error", "done"):
            event = await asyncio.wait_for(ws.receive_json(), 600)
        assert event["type"] == "error" and event["data"]["code"] == "cancelled", event


async def test_two_dimension_report_holds_no_json_or_prompt_text(
    realmodel_server: str,
    tmp_path: Path,
    write_config: Callable[[str], Path],
    make_client: Any,
) -> None:
    text = _config(realmodel_server, _notes(tmp_path), max_tokens=96)
    text += "\n[research]\ndimensions = 2\nmax_rounds = 0\nsources_per_dimension = 2\n"
    write_config(text)
    client = await make_client()
    runtime = client.app[RUNTIME]
    await runtime.memory.wait_ready()
    query = "How should I care for the quince tree in my garden?"
    started = await (await client.post("/api/research/deep", json={"query": query})).json()
    job = await runtime.jobs.wait(started["researchId"])
    assert job.status == "complete", job.error
    saved = await runtime.jobs.store.report(job.id)
    assert saved is not None
    body, _, listing = saved.markdown.partition("\n## Sources\n")
    assert body.startswith("# ")
    assert "```" not in body and not re.search(r'^\s*[{\[]|"\w+"\s*:', body, flags=re.M), body
    for text in PROMPT_TEXT:
        assert text.lower() not in body.lower(), text
    listed = re.findall(r"^(\d+)\. ", listing, flags=re.M)
    assert {int(n) for n in _MARKER.findall(body)} <= {int(n) for n in listed}
    assert "HEARTBEAT.md" not in listing
    events = await runtime.jobs.store.events(job.id)
    for event in events:
        if event.type == "dimension_complete":
            finding = event.data["keyFinding"]
            assert finding.strip() and finding.lower() not in ("one sentence", "..."), event
    snapshot = JobStatus.of(await runtime.jobs.snapshot(job.id)).to_dict()
    assert snapshot["sourceCount"] == len(listed)
    fallbacks = [e.data for e in events if e.type == "fallback"]
    usage = await runtime.jobs.usage(job.id)
    assert len(fallbacks) == sum(u["fallbacks"] for u in usage.values())


async def test_query_api_answer_cites_spans_at_their_lines(
    realmodel_server: str,
    tmp_path: Path,
    write_config: Callable[[str], Path],
    make_client: Any,
) -> None:
    """POST /query (the query API) with the real model: citations present, each the file:lines
    of a passage that stands there, no JSON or prompt text in the answer."""
    notes = _notes(tmp_path)
    text = _config(realmodel_server, notes, max_tokens=64)
    text += "\n[research]\nsources_per_dimension = 2\n"
    write_config(text)
    client = await make_client()
    runtime = client.app[RUNTIME]
    await runtime.memory.wait_ready()
    query = {"version": "1", "query": "How should I care for my quince tree?"}
    wait = aiohttp.ClientTimeout(total=850)  # the test client's default is 5 minutes
    resp = await client.post("/query", json={**query, "dimensions": 1, "loops": 0}, timeout=wait)
    assert resp.status == 200, await resp.text()
    result = await resp.json()
    assert result["version"] == "1" and result["research_id"]
    answer, _, listing = result["answer"].partition("\n## Sources\n")
    assert answer.strip()
    assert "```" not in answer and not re.search(r'^\s*[{\[]|"\w+"\s*:', answer, flags=re.M)
    for prompt in PROMPT_TEXT:
        assert prompt.lower() not in answer.lower(), prompt
    listed = re.findall(r"^(\d+)\. ", listing, flags=re.M)
    assert {int(n) for n in _MARKER.findall(answer)} <= {int(n) for n in listed}
    assert result["citations"], "a report on a question the notes answer cites them"
    sources = {s.location: s for s in await runtime.jobs.store.sources(result["research_id"])}
    for citation in result["citations"]:
        match = re.fullmatch(r"(.+):(\d+)-(\d+)", citation)
        assert match, citation
        name, start, end = match.group(1), int(match.group(2)), int(match.group(3))
        assert name in NOTES, citation  # the user's notes, never the daemon's logs
        lines = (notes / name).read_text(encoding="utf-8").splitlines()
        assert 1 <= start <= end <= len(lines), citation
        span = _norm("\n".join(lines[start - 1 : end]))
        passage = _norm(sources[citation].passage)
        assert passage and (passage in span or span in passage), (citation, passage, span)
    assert result["reasoning"] and result["reasoning"][-1].startswith("Synthesised")
