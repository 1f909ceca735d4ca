"""Jobs on a model (the queued fake provider): malformed JSON survival, usage, errors, cancel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from localresearch.api.research import JobStatus
from localresearch.config import load_config
from localresearch.errors import ProviderError
from localresearch.paths import Paths
from localresearch.runtime import Runtime
from tests.fakes.fixtures import queued_runtime
from tests.fakes.jobs import completed_job
from tests.fakes.queued_provider import Gate, QueuedProvider
from tests.fakes.search_scifact import QUESTION, research_config, scifact_available, write_corpus

pytestmark = pytest.mark.skipif(not scifact_available(), reason="SciFact data set not present")


def _summary(text: str, source: int = 1) -> str:
    return json.dumps(
        {
            "summary": text,
            "keyFinding": text.split(".")[0] + ".",
            "points": [{"text": text, "source": source}, {"text": "Invented.", "source": 99}],
        }
    )


@pytest.fixture
async def runtime(
    tmp_path: Path,
    paths: Paths,
    queued: type[QueuedProvider],
) -> AsyncIterator[Runtime]:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, extra=40, queries=10)
    text = research_config(corpus, dimensions=3, max_rounds=1, dimension_concurrency=1)
    async with queued_runtime(paths, text) as rt:
        yield rt


async def test_malformed_json_is_repaired_or_retried(
    runtime: Runtime, queued: type[QueuedProvider]
) -> None:
    queued.push("Sure!\n```json\n{'dimensions': ['Folic acid', 'Vitamin B12', 'Heart',]}\n```")
    queued.push("I think the passages say that homocysteine rises.")  # no JSON at all
    queued.push(_summary("Folic acid lowers homocysteine."))
    queued.push(_summary("B12 deficiency raises homocysteine.", 2))
    queued.push('{"summary": 5}')  # JSON, wrong shape
    queued.push('{"summary": "Heart disease risk.", "keyFinding": "Risk rises."}')
    queued.push('{"gaps": ["dose response"], "newDimensions": []}')
    queued.push("# Report\n\nFolic acid helps [1] and a made-up claim [42].\n\n", "More [2, 77].")
    jobs, job = await completed_job(runtime, QUESTION)
    events = await jobs.store.events(job.id)
    assert events[1].data["dimensions"] == ["Folic acid", "Vitamin B12", "Heart"]
    completes = [e.data for e in events if e.type == "dimension_complete"]
    assert [c["summary"] for c in completes] == [
        "Folic acid lowers homocysteine.",
        "B12 deficiency raises homocysteine.",
        "Heart disease risk.",
    ]
    evaluation = next(e.data for e in events if e.type == "evaluate_complete")
    assert evaluation == {"gaps": ["dose response"], "hasGaps": True, "newDimensions": []}
    report = "".join(e.data["text"] for e in events if e.type == "synthesis_delta")
    assert "[42]" not in report and "77" not in report.split("## Sources")[0]
    # A marker is kept only where its passage supports the sentence; else the sentence is
    # cited to the passage that does, or flagged.
    assert "More [2]" in report
    assert "made-up claim *(unsupported)*." in report or "made-up claim [" in report
    usage = await jobs.usage(job.id)
    assert usage["scope"]["repairs"] == 1 and usage["scope"]["retries"] == 0
    assert usage["dimension:0"]["retries"] == 1 and usage["dimension:0"]["calls"] == 2
    assert usage["dimension:2"]["retries"] == 1
    assert usage["synthesis"]["completion_tokens"] > 0 and usage["synthesis"]["calls"] == 1
    assert all(u["prompt_tokens"] > 0 for u in usage.values() if u["calls"])
    # The retry told the model what was wrong.
    retry = queued.requests[2].messages[-1].content
    assert "not usable" in retry and "JSON" in retry
    assert queued.requests[0].json_mode and not queued.requests[-1].json_mode


async def test_hopeless_model_falls_back_to_the_builtin_engine(
    runtime: Runtime, queued: type[QueuedProvider]
) -> None:
    for _ in range(3):
        queued.push("Dimensions: folic acid; vitamin B12; heart disease.")
    jobs, job = await completed_job(runtime, QUESTION, rounds=0)
    usage = await jobs.usage(job.id)
    assert usage["scope"]["fallbacks"] == 1 and usage["scope"]["calls"] == 3
    events = await jobs.store.events(job.id)
    assert len(events[1].data["dimensions"]) == 3
    assert "Dimensions: folic acid" in queued.requests[2].messages[-2].content


async def test_provider_error_ends_the_job_with_an_error_event(
    runtime: Runtime, queued: type[QueuedProvider]
) -> None:
    queued.push(ProviderError("model server exploded (HTTP 500)"))
    jobs = runtime.jobs
    assert jobs is not None
    job = await jobs.submit(QUESTION)
    final = await jobs.wait(job.id)
    assert final.status == "error" and final.error == "model server exploded (HTTP 500)"
    events = await jobs.store.events(job.id)
    assert [e.type for e in events][-2:] == ["error", "done"]
    assert events[-2].data["message"] == "model server exploded (HTTP 500)"
    snapshot = JobStatus.of(await jobs.snapshot(job.id)).to_dict()
    assert snapshot["status"] == "error" and "report" not in snapshot
    assert snapshot["phase"] == "done"  # not stuck in the phase it failed in
    # The manager keeps serving: the next job runs.
    again = await jobs.submit(QUESTION, rounds=0)
    assert (await jobs.wait(again.id)).status == "complete"


async def test_cancel_abandons_the_model_call_in_flight_and_keeps_a_partial_report(
    runtime: Runtime, queued: type[QueuedProvider]
) -> None:
    """A cancel does not wait for a slow model: its call is abandoned (the request closed) and
    the job ends `cancelled` at once, keeping what had finished (here: nothing yet)."""
    gate = Gate()
    queued.push('{"dimensions": ["Folic acid", "Vitamin B12", "Heart disease"]}')
    queued.push(gate, _summary("Folic acid lowers homocysteine."))
    jobs = runtime.jobs
    assert jobs is not None
    job = await jobs.submit(QUESTION)
    await asyncio.wait_for(gate.reached.wait(), 10)
    await jobs.cancel(job.id)
    final = await asyncio.wait_for(jobs.wait(job.id), 1.0)  # the gate is still closed
    assert final.status == "cancelled"
    assert queued.cancelled == 1  # the model call in flight was cancelled, not awaited
    types = [e.type for e in await jobs.store.events(job.id)]
    assert types.count("dimension_started") == 1 and types.count("dimension_complete") == 0
    assert "synthesis_started" not in types and types[-1] == "done"
    saved = await jobs.store.report(job.id)
    assert saved is not None and saved.partial
    assert "Partial report" in saved.markdown
    assert "Folic acid lowers homocysteine" not in saved.markdown  # never answered
    snapshot = JobStatus.of(await jobs.snapshot(job.id)).to_dict()
    assert snapshot["partialReport"] == saved.markdown and "report" not in snapshot
    assert len(queued.requests) == 2  # nothing ran after the cancel
    gate.event.set()
    # Cancelling a finished job changes nothing.
    await jobs.cancel(job.id)
    assert (await jobs.store.get(job.id)).status == "cancelled"


async def test_cancel_a_queued_job(runtime: Runtime, queued: type[QueuedProvider]) -> None:
    jobs = runtime.jobs
    assert jobs is not None
    gate = Gate()
    queued.push(gate, '{"dimensions": ["A"]}')
    first = await jobs.submit(QUESTION, rounds=0, dimensions=1)
    await asyncio.wait_for(gate.reached.wait(), 10)
    extra = [await jobs.submit(QUESTION, rounds=0, dimensions=1) for _ in range(2)]
    queued_row = await jobs.store.get(extra[-1].id)
    assert queued_row.status == "queued"
    await jobs.cancel(extra[-1].id)
    gate.event.set()
    assert (await jobs.wait(first.id)).status == "complete"
    final = await jobs.wait(extra[-1].id)
    assert final.status == "cancelled"
    types = [e.type for e in await jobs.store.events(final.id)]
    assert types == ["done"]  # cancelled while it waited: no step ran


async def test_daemon_stop_mid_job_resumes_on_next_start(
    runtime: Runtime, queued: type[QueuedProvider], paths: Paths
) -> None:
    gate = Gate()
    queued.push('{"dimensions": ["Folic acid", "Vitamin B12", "Heart disease"]}')
    queued.push(_summary("Folic acid lowers homocysteine."))
    queued.push(gate, _summary("never delivered"))
    jobs = runtime.jobs
    assert jobs is not None
    job = await jobs.submit(QUESTION, rounds=0)
    await asyncio.wait_for(gate.reached.wait(), 10)
    before = await jobs.store.events(job.id)
    await runtime.stop()  # a graceful stop: the job stays `running`
    assert (await _row_status(paths, job.id)) == "running"

    queued.push(_summary("B12 deficiency raises homocysteine.", 2))
    queued.push(_summary("Heart disease risk."))
    queued.push("# Report\n\nFolic acid [1].\n")
    calls_before = len(queued.requests)
    again = Runtime(load_config(paths.config_file), paths)
    await again.start()
    try:
        assert again.jobs is not None
        final = await _wait_terminal(again, job.id)
        assert final == "complete"
        events = await again.jobs.store.events(job.id)
    finally:
        await again.stop()
    assert [e.to_dict() for e in events[: len(before)]] == [e.to_dict() for e in before]
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events].count("dimension_started") == 3
    assert [e.type for e in events].count("scope_complete") == 1
    assert len(queued.requests) - calls_before == 3  # scope and dimension 0 were not redone


async def test_idle_streams_get_keepalive_comments(
    make_client: Any, queued: type[QueuedProvider], runtime: Runtime, monkeypatch: Any
) -> None:
    from localresearch.server import sse

    monkeypatch.setattr(sse, "KEEPALIVE_SECONDS", 0.05)
    await runtime.stop()
    client = await make_client()
    gate = Gate()
    queued.push(gate, '{"dimensions": ["A"]}')
    started = await (await client.post("/api/research/deep", json={"query": QUESTION})).json()
    await asyncio.wait_for(gate.reached.wait(), 10)
    response = await client.get(f"/api/research/deep/{started['researchId']}")
    seen = b""
    while b": keep-alive" not in seen:
        seen += await asyncio.wait_for(response.content.readany(), 5)
    assert b'"type":"scope_started"' in seen
    response.close()
    gate.event.set()


async def _row_status(paths: Paths, job_id: str) -> str:
    import sqlite3

    with sqlite3.connect(paths.database) as conn:
        row = conn.execute("SELECT status FROM research_jobs WHERE id = ?", (job_id,)).fetchone()
    return str(row[0])


async def _wait_terminal(rt: Runtime, job_id: str) -> str:
    assert rt.jobs is not None
    for _ in range(500):
        status = (await rt.jobs.store.get(job_id)).status
        if status in ("complete", "error", "cancelled"):
            return status
        await asyncio.sleep(0.02)
    raise AssertionError("job did not finish")


async def test_dimensions_run_concurrently_within_the_limit(
    tmp_path: Path, paths: Paths, write_config: Callable[[str], Path], queued: type[QueuedProvider]
) -> None:
    corpus = tmp_path / "corpus2"
    write_corpus(corpus, extra=20, queries=5)
    text = research_config(corpus, dimensions=3, max_rounds=0, dimension_concurrency=2)
    write_config(text + '\n[llm]\nprovider = "queued"\n')
    rt = Runtime(load_config(paths.config_file), paths)
    await rt.start()
    try:
        assert rt.jobs is not None and rt.memory is not None
        await rt.memory.wait_ready()
        gates = [Gate() for _ in range(3)]
        queued.push('{"dimensions": ["Alpha", "Beta", "Gamma"]}')
        for n, gate in enumerate(gates):
            queued.push(gate, _summary(f"Finding {n}."))
        job = await rt.jobs.submit(QUESTION)
        await asyncio.wait_for(gates[0].reached.wait(), 10)
        await asyncio.wait_for(gates[1].reached.wait(), 10)
        await asyncio.sleep(0.2)
        assert not gates[2].reached.is_set()  # two at once, no more
        gates[0].event.set()
        await asyncio.wait_for(gates[2].reached.wait(), 10)
        gates[1].event.set()
        gates[2].event.set()
        assert (await rt.jobs.wait(job.id)).status == "complete"
    finally:
        await rt.stop()


async def test_cancel_during_synthesis_stops_at_the_next_paragraph(
    runtime: Runtime, queued: type[QueuedProvider]
) -> None:
    gate = Gate()
    queued.push('{"dimensions": ["Folic acid", "Vitamin B12", "Heart disease"]}')
    for text in ("Folic acid lowers homocysteine.", "B12 lowers it.", "Heart risk rises."):
        queued.push(_summary(text))
    queued.push("# Report\n\nFolic acid helps [1].\n\n", gate, "Never shown [2].\n\n", "Nor this.")
    jobs = runtime.jobs
    assert jobs is not None
    job = await jobs.submit(QUESTION, rounds=0)
    await asyncio.wait_for(gate.reached.wait(), 10)
    await jobs.cancel(job.id)
    gate.event.set()
    final = await jobs.wait(job.id)
    assert final.status == "cancelled"
    events = await jobs.store.events(job.id)
    types = [e.type for e in events]
    assert "synthesis_complete" not in types and types[-1] == "done"
    assert events[-1].data["status"] == "cancelled"
    streamed = "".join(e.data["text"] for e in events if e.type == "synthesis_delta")
    # The first paragraph only (checked against its source: cited, or flagged unsupported).
    assert streamed.startswith("# Report\n\nFolic acid helps ") and streamed.endswith(".\n\n")
    assert streamed.count("\n\n") == 2
    saved = await jobs.store.report(job.id)
    assert saved is not None and saved.partial
    assert saved.markdown.startswith(streamed.rstrip("\n"))
    assert "Never shown" not in saved.markdown and "## Sources" in saved.markdown
    assert "cancelled while the report was being written" in saved.markdown
    snapshot = JobStatus.of(await jobs.snapshot(job.id)).to_dict()
    assert snapshot["phase"] == "done" and snapshot["partialReport"] == saved.markdown
