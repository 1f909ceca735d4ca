"""The job pipeline on the builtin engine over a real SciFact subset, through the real runtime."""

from __future__ import annotations

import asyncio
import re

import pytest

from localresearch.api.research import JobStatus
from localresearch.research.citations import CITATION, normalise
from localresearch.runtime import Runtime
from tests.fakes.jobs import completed_job
from tests.fakes.search_scifact import (
    QUESTION,
    scifact_available,
)

pytestmark = pytest.mark.skipif(not scifact_available(), reason="SciFact data set not present")

SPEC_FIELDS = {
    "scope_started": {"query"},
    "scope_complete": {"dimensions"},
    "dimension_started": {"dimension", "index"},
    "dimension_source": {"title", "url", "snippet", "dimension"},
    "dimension_complete": {"dimension", "summary", "keyFinding", "sourceCount"},
    "evaluate_started": {"iteration"},
    "evaluate_complete": {"gaps", "hasGaps"},
    "synthesis_started": set(),
    "synthesis_delta": {"text"},
    "synthesis_complete": {"sourceCount"},
    "error": {"message"},
    "done": {"researchId"},
}


@pytest.fixture
def runtime(scifact_jobs_runtime: Runtime) -> Runtime:
    return scifact_jobs_runtime


async def test_builtin_job_streams_the_spec_events_in_order(runtime: Runtime) -> None:
    jobs, job = await completed_job(runtime, QUESTION)
    events = await jobs.store.events(job.id)
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    for event in events:
        assert SPEC_FIELDS[event.type] <= set(event.data), event
        assert event.timestamp.endswith("Z")
    types = [e.type for e in events]
    assert types[:2] == ["scope_started", "scope_complete"]
    assert types[-3:] == ["synthesis_delta", "synthesis_complete", "done"]
    assert types.count("synthesis_started") == 1
    dims = events[1].data["dimensions"]
    assert len(dims) == 3
    # Every dimension starts before its sources and completes after them.
    for index, dim in enumerate(dims):
        started = types.index("dimension_started", 0)
        positions = [i for i, e in enumerate(events) if e.data and e.data.get("dimension") == dim]
        assert events[positions[0]].type == "dimension_started"
        assert events[positions[0]].data["index"] == index
        assert events[positions[-1]].type == "dimension_complete"
        assert started < positions[-1]
    evaluate = types.index("evaluate_started")
    assert evaluate > max(
        i for i, t in enumerate(types) if t == "dimension_complete" and i < evaluate
    )
    assert types.index("synthesis_started") > types.index("evaluate_complete")
    snapshot = JobStatus.of(await jobs.snapshot(job.id)).to_dict()
    assert snapshot["status"] == "complete"
    assert snapshot["phase"] == "done"
    assert snapshot["dimensionsComplete"] == snapshot["dimensionsTotal"] >= 3
    # One source count everywhere: distinct sources, as many as the report lists.
    distinct = {e.data["sourceId"] for e in events if e.type == "dimension_source"}
    # The report lists the sources it cites, and no other it read.
    body, _, listed = snapshot["report"].partition("\n## Sources\n")
    count = len(re.findall(r"^\d+\. ", listed, flags=re.M))
    cited = {int(n) for m in CITATION.finditer(body) for n in m.group(1).split(",")}
    assert cited == set(range(1, count + 1))
    assert snapshot["sourceCount"] == count <= len(distinct) < types.count("dimension_source")
    assert events[-2].data["sourceCount"] == count
    report = "".join(e.data["text"] for e in events if e.type == "synthesis_delta")
    assert snapshot["report"] == report


async def test_report_citations_resolve_to_retrieved_passages(runtime: Runtime) -> None:
    jobs = runtime.jobs
    assert jobs is not None
    job = await jobs.submit(QUESTION)
    await jobs.wait(job.id)
    saved = await jobs.store.report(job.id)
    assert saved is not None and not saved.partial
    body, _, listing = saved.markdown.partition("\n## Sources\n")
    numbers = [int(n) for m in CITATION.finditer(body) for n in m.group(1).split(",")]
    assert numbers, "the report cites nothing"
    assert set(numbers) <= set(range(1, len(saved.sources) + 1))
    listed = re.findall(r"^(\d+)\. ", listing, flags=re.M)
    assert [int(n) for n in listed] == list(range(1, len(saved.sources) + 1))
    retrieved = {s.id: s for s in await jobs.store.sources(job.id)}
    assert {s["id"] for s in saved.sources} <= set(retrieved)
    # Each extractive statement is found verbatim in the passage it cites.
    checked = 0
    for line in body.splitlines():
        if line.startswith("#") or "[" not in line:
            continue
        line = re.sub(r"^- \*\*[^*]+\*\*: ", "", line)
        pieces = re.split(r" \[(\d+)\]\s*", line)
        for text, cite in zip(pieces[::2], pieces[1::2], strict=False):
            source = saved.sources[int(cite) - 1]
            assert normalise(text) in normalise(source["passage"]), (text, source["location"])
            checked += 1
    assert checked >= 3
    # The question's subject made it into the report, from the user's own documents.
    assert "homocysteine" in body.lower()
    assert all(s["location"].endswith(tuple("0123456789")) for s in saved.sources)


async def test_in_process_subscribers_see_every_event_once(runtime: Runtime) -> None:
    jobs = runtime.jobs
    assert jobs is not None
    job = await jobs.submit(QUESTION)

    async def collect(after: int = 0) -> list[int]:
        return [e.id or 0 async for e in jobs.subscribe(job.id, after)]

    live, late = await asyncio.gather(collect(), collect(3))
    assert (
        live == list(range(1, len(live) + 1))
        and live[-1] == (await jobs.store.get(job.id)).last_event_id
    )
    assert late == live[3:]
    assert await collect(live[-1]) == []  # nothing after the end: returns at once
    assert jobs.hub.subscriber_count(job.id) == 0
