"""What a small model gets wrong in research steps never reaches the report: echoed
instructions, empty findings and JSON blocks are rejected, the builtin engine does that part,
and each fallback is an event and a log line."""

from __future__ import annotations

import json
import logging
import re

import pytest

from localresearch.runtime import Runtime
from tests.fakes.queued_provider import QueuedProvider


async def test_echoes_empty_findings_and_json_never_reach_the_report(
    topics_runtime: Runtime, queued: type[QueuedProvider], caplog: pytest.LogCaptureFixture
) -> None:
    queued.push(json.dumps({"dimensions": ["Pruning", "Fire blight"]}))
    # An echoed key finding is replaced by the summary's first sentence.
    queued.push(
        json.dumps(
            {
                "summary": "Prune quince trees in late winter. Remove crossing branches.",
                "keyFinding": "one sentence",
                "points": [{"text": "Prune quince trees in late winter.", "source": 1}],
            }
        )
    )
    # Three unusable replies for the second dimension: empty, JSON inside, the instruction.
    queued.push(json.dumps({"summary": "", "keyFinding": "", "points": []}))
    queued.push(json.dumps({"summary": '```json\n{"summary": "x"}\n```', "points": []}))
    queued.push(
        json.dumps(
            {"summary": "Summarise what the passages say about this dimension of the question."}
        )
    )
    # The report: a raw JSON block, as a small model writes without structured output.
    queued.push('```json\n{"question": "quince care", "answer": "Prune it."}\n```')
    jobs = topics_runtime.jobs
    assert jobs is not None
    caplog.set_level(logging.WARNING)
    job = await jobs.submit("How should I care for my quince tree?")
    final = await jobs.wait(job.id)
    assert final.status == "complete", final.error
    events = await jobs.store.events(job.id)
    findings = [e.data["keyFinding"] for e in events if e.type == "dimension_complete"]
    assert findings[0] == "Prune quince trees in late winter."
    assert findings[1].strip() and findings[1] != "one sentence"
    fallbacks = [e.data for e in events if e.type == "fallback"]
    assert [(f["step"], f["part"]) for f in fallbacks] == [
        ("dimension", "findings (Fire blight)"),
        ("synthesis", "report"),
    ]
    assert "repeats the instructions" in fallbacks[0]["reason"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("builtin engine" in w for w in warnings) == 2
    usage = await jobs.usage(job.id)
    assert usage["dimension:1"]["fallbacks"] == 1 and usage["dimension:1"]["calls"] == 3
    assert usage["synthesis"]["fallbacks"] == 1
    saved = await jobs.store.report(job.id)
    assert saved is not None
    body = saved.markdown.split("\n## Sources\n")[0]
    assert body.startswith("# How should I care for my quince tree?")
    assert "```" not in body and '"question"' not in body and "one sentence" not in body
    assert re.search(r"\[\d+\]", body), "the builtin body cites its sources"
    assert "Prune quince" in body
