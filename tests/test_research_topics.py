"""Offline (builtin) reports on a notes folder with several topics: each report keeps to its own
topic's notes, has no filler section, and gives one source count everywhere."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from localresearch.api.research import JobStatus
from localresearch.paths import Paths
from localresearch.runtime import Runtime
from tests.fakes.jobs import completed_job
from tests.fakes.search_scifact import research_config, scifact_runtime, write_notes

NOTES = {
    "garden/quince.md": """# Quince tree

## Planting

Quince trees need full sun and a sheltered spot; they tolerate heavy soil better than apples.
Plant bare-root quince trees in late autumn or winter, while they are dormant.

## Care through the year

Water young quince trees weekly during dry spells in their first two summers.
Mulch around the trunk keeps the roots cool, but keep the mulch a hand's width from the bark.
Feed quince trees with a balanced fertiliser in early spring; too much nitrogen invites fire blight.

## Pruning and disease

Prune quince trees in late winter, removing crossing branches and dead wood.
Fire blight is the most serious quince disease; cut infected shoots well below the damage.
Leaf blight shows as brown spots on quince leaves; rake up fallen leaves in autumn.
""",
    "sport/marathon.md": """# Marathon training

## Building up

A sixteen-week marathon plan builds weekly mileage by no more than ten percent a week.
The long run peaks at about 32 kilometres three weeks before race day.

## Taper and race week

Tapering cuts marathon training volume by forty to sixty percent over the final two weeks.
Carbohydrate loading over the last three days tops up glycogen stores.

## Care after long runs

Take care to walk for ten minutes after every long run, then eat within the hour.
Sore calves after a long run usually recover with two easy days.
""",
    "tech/crdt.md": """# CRDTs

## Merging

A CRDT merges concurrent edits without coordination: every replica converges to the same state.
Sequence CRDTs give each inserted character a unique, ordered identifier.
Tombstones keep deleted elements so that concurrent inserts still find their position.

## Limitations

CRDT documents grow with their edit history; tombstones need garbage collection.
""",
    "tech/wireguard.md": """# WireGuard

## Setup

WireGuard peers authenticate each other with static public keys.
Take care to keep the private key readable only by root.

## Limitations

WireGuard has no built-in user management; every peer is configured by hand.
""",
}
FILLER = ("Background and definitions", "Methods and measurements", "Related work")
TOPIC_FILES = {
    "How should I care for my quince tree through the year?": {"quince.md"},
    "How should I train for a marathon?": {"marathon.md"},
    "How do CRDTs merge concurrent edits?": {"crdt.md"},
}


@pytest.fixture
async def runtime(tmp_path: Path, paths: Paths) -> AsyncIterator[Runtime]:
    notes = write_notes(tmp_path / "notes", NOTES)
    async with scifact_runtime(research_config(notes, dimensions=3, max_rounds=1), paths) as rt:
        yield rt


@pytest.mark.parametrize("question", list(TOPIC_FILES))
async def test_report_keeps_to_its_topic_without_filler(runtime: Runtime, question: str) -> None:
    jobs, job = await completed_job(runtime, question)
    saved = await jobs.store.report(job.id)
    assert saved is not None
    body, _, listing = saved.markdown.partition("\n## Sources\n")
    listed = re.findall(r"^(\d+)\. .*`([^`]+)`$", listing, flags=re.M)
    files = {n: Path(location.split(":")[0]).name for n, location in listed}
    # No section from another topic's notes: everything cited comes from this topic's file.
    cited = {n for n in re.findall(r"\[(\d+)\]", body)}
    assert cited, body
    assert {files[n] for n in cited} <= TOPIC_FILES[question], (body, files)
    for other, text in NOTES.items():
        if Path(other).name in TOPIC_FILES[question]:
            continue
        for line in text.splitlines():
            if len(line.split()) > 5:
                assert line.strip() not in body, (line, body)
    # No filler section: each section names a topic and cites its evidence.
    sections = re.split(r"^## ", body, flags=re.M)[1:]
    for section in sections:
        heading, _, text = section.partition("\n")
        assert heading.strip() not in FILLER, heading
        assert re.search(r"\[\d+\]", text), f"section {heading!r} has no evidence"
    assert "No retrieved passage addresses" not in body
    # One source count: the report's sentence, its list, the snapshot and `jobs list`.
    count = int(re.search(r"draws on (\d+) sources?", body).group(1))  # type: ignore[union-attr]
    snapshot = JobStatus.of(await jobs.snapshot(job.id)).to_dict()
    listed_jobs, _ = await jobs.list_jobs()
    listing_count = next(
        JobStatus.of(j).to_dict()["sourceCount"] for j in listed_jobs if j.job.id == job.id
    )
    assert count == len(listed) == snapshot["sourceCount"] == listing_count
    # Gaps are the question's own phrases, never a lone word like 'vs'.
    events = await jobs.store.events(job.id)
    for event in events:
        if event.type == "evaluate_complete":
            for gap in event.data["gaps"]:
                quoted = re.findall(r"“([^”]+)”", gap)
                assert quoted and all(len(q) >= 3 for q in quoted), gap
                assert all(q.lower() in question.lower() for q in quoted if "covers" in gap)
