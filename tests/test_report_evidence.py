"""A model's report the sources do not back gets what they say, quoted and cited, as an answer
does; its sources are numbered strongest first (each dimension's best, then the next)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from localresearch.research.citations import UNSUPPORTED, number_sources
from localresearch.research.types import DimensionResult, Source
from localresearch.runtime import Runtime
from tests.fakes.jobs import completed_job
from tests.fakes.queued_provider import QueuedProvider

LABEL = "**Quoted from the sources**:"


def _summary(text: str) -> str:
    return json.dumps(
        {"summary": text, "keyFinding": text, "points": [{"text": text, "source": 1}]}
    )


async def _report(runtime: Runtime, queued: type[QueuedProvider], report: str) -> tuple[str, Any]:
    queued.push(json.dumps({"dimensions": ["Pruning", "Fire blight"]}))
    queued.push(_summary("Prune quince trees in late winter, removing crossing branches."))
    queued.push(_summary("Fire blight is the most serious quince disease."))
    queued.push(report)
    jobs, job = await completed_job(
        runtime, "How should I prune my quince tree and treat fire blight?"
    )
    saved = await jobs.store.report(job.id)
    assert saved is not None
    return saved.markdown, job


async def test_a_report_mostly_unsupported_quotes_the_strongest_sources(
    topics_runtime: Runtime, queued: type[QueuedProvider]
) -> None:
    # One sentence of three holds; the other two are what a small model invents.
    report = (
        "# Quince care\n\nQuince trees enjoy moonlight and classical music [1]. "
        "Volcanic ash cures every disease of the orchard [2]. "
        "Prune quince trees in late winter, removing crossing branches and dead wood [1].\n"
    )
    markdown, job = await _report(topics_runtime, queued, report)
    body, _, listing = markdown.partition("\n## Sources\n")
    assert body.count(UNSUPPORTED) == 2  # the model's inventions stay flagged
    assert "Volcanic ash cures every disease of the orchard" in body
    quoted = next(p for p in body.split("\n\n") if p.startswith(LABEL))
    marks = [int(n) for n in re.findall(r"\[(\d+)\]", quoted)]
    assert 1 in marks and marks == sorted(marks)  # the strongest source, first
    sources = await topics_runtime.jobs.store.sources(job.id)
    assert len(re.findall(r"^\d+\. ", listing, flags=re.M)) == len(sources)
    # Each quote is its source's own words.
    for text, n in re.findall(r"(?:: |\] )([^\[]+?) \[(\d+)\]", quoted):
        passage = " ".join(sources[int(n) - 1].passage.split())
        assert text.rstrip(".") in passage, (text, n)


async def test_a_report_that_stands_gets_no_quotes(
    topics_runtime: Runtime, queued: type[QueuedProvider]
) -> None:
    report = (
        "# Quince care\n\n"
        "Prune quince trees in late winter, removing crossing branches and dead wood [1].\n"
    )
    markdown, _job = await _report(topics_runtime, queued, report)
    assert LABEL not in markdown and UNSUPPORTED not in markdown


def _source(name: str) -> Source:
    return Source(Source.make_id(name, name), name, f"{name}:1-1", "", name, "memory")


def test_sources_are_numbered_strongest_first_across_dimensions() -> None:
    a1, a2, a3, b1, b2 = (_source(n) for n in ("a1", "a2", "a3", "b1", "b2"))
    results = [
        DimensionResult("A", 0, "", "", sources=[a1, a2, a3]),
        DimensionResult("B", 1, "", "", sources=[b1, a1, b2]),  # shares a1, ranked second
    ]
    numbering, ordered = number_sources(results)
    assert [s.title for s in ordered] == ["a1", "b1", "a2", "a3", "b2"]
    assert numbering[a1.id] == 1 and numbering[b1.id] == 2


class _ModelWriter:
    """The part of an engine a session report uses: a model's synthesis as it wrote it."""

    extractive = False

    def __init__(self, text: str) -> None:
        self.text = text

    async def synthesise(self, *_args: Any) -> AsyncIterator[str]:
        yield self.text


async def test_a_session_report_from_a_model_is_checked_and_quotes_its_sources() -> None:
    from localresearch.research_sessions.engines import write_report

    prune = Source(
        Source.make_id("quince.md:3-3", "p"),
        "Pruning",
        "quince.md:3-3",
        "",
        "Prune quince trees in late winter, removing crossing branches and dead wood.",
        "memory",
    )
    blight = Source(
        Source.make_id("quince.md:4-4", "b"),
        "Disease",
        "quince.md:4-4",
        "",
        "Fire blight is the most serious quince disease; cut infected shoots below the damage.",
        "memory",
    )
    results = [DimensionResult("Pruning", 0, "", "", sources=[prune, blight])]
    text = "Quince trees enjoy moonlight and music [1]. Volcanic ash cures the orchard [2].\n"
    report = await write_report(_ModelWriter(text), "When should I prune quince?", results, True)
    body, _, listing = report.partition("\n## Sources\n")
    assert body.count(UNSUPPORTED) == 2 and "[2]" not in body.split(LABEL)[0]
    quoted = body.split(LABEL)[1]
    assert quoted.strip().startswith("Prune quince trees in late winter") and "[1]" in quoted
    assert listing.strip().startswith("1. Pruning")
