"""A model's report no source backs falls back to the builtin engine's body, written from the
model's findings: each of their sentences is checked against the sources as any model text is
(re-cited to the passage that supports it, or left out), said once, and the Sources list holds
only what the report cites. A gap step's sentence-like 'new dimension' never becomes a section."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from localresearch.paths import Paths
from localresearch.research.citations import normalise, number_sources, strip_markers
from localresearch.research.fallback import checked_findings
from localresearch.research.report import extractive_paragraphs
from localresearch.research.types import DimensionResult, Point, Source
from localresearch.runtime import Runtime
from tests.fakes.jobs import completed_job
from tests.fakes.queued_provider import QueuedProvider
from tests.fakes.search_scifact import research_config, scifact_runtime, write_notes

NOTES = {
    "sqlite-backup.md": """# SQLite backups

Never copy a live SQLite database file with cp while a program writes to it.
Use the online backup API or the .backup command of the sqlite3 shell to copy a live database.
VACUUM INTO writes a compacted copy of the database to a new file.

## Schedule

Run the backup every night from cron and keep seven daily copies.
Check each copy with PRAGMA integrity_check before trusting it.
""",
    "sqlite-wal.md": """# SQLite WAL mode

Write-ahead logging lets readers continue while a writer appends to the WAL file.
Enable it once with PRAGMA journal_mode=WAL; the setting persists in the database file.

## Checkpoints

The WAL file grows until a checkpoint copies its pages back into the database file.
Automatic checkpoints run when the WAL file reaches 1000 pages by default.
A long-running reader can stop a checkpoint from finishing, so the WAL file keeps growing.
""",
    "sqlite-vacuum.md": """# SQLite maintenance

Run PRAGMA optimize before closing a long-lived connection to refresh query planner statistics.
VACUUM rebuilds the database file and returns free pages to the operating system.
""",
    "dns.md": """# Home DNS

The Pi-hole answers DNS queries for every device on the home network.
The router hands out the Pi-hole's address as the only DNS server over DHCP.

## Upstream

The Pi-hole forwards queries it cannot answer from its cache to Quad9 at 9.9.9.9.
DNSSEC validation is switched on in the Pi-hole's DNS settings.
""",
    "wifi.md": """# Home Wi-Fi

The access point broadcasts one network on the 5 GHz band and one on 2.4 GHz.
WPA3 is enabled for every device that supports it.
""",
    "router.md": """# Router

The router's firmware is updated from its web page every quarter.
Port forwarding is switched off on the router.
""",
    "backup-disk.md": """# Backup disk

A USB disk holds the nightly copies of the home server.
The disk is replaced every three years.
""",
    "network-map.md": """# Network map

The home server, the Pi-hole and the printer have fixed addresses in the router.
""",
}

GROWS = "The WAL file grows until a checkpoint copies its pages back into the database file."
AUTO = "Automatic checkpoints run when the WAL file reaches 1000 pages by default."
BACKUP_API = (
    "Use the online backup API or the .backup command of the sqlite3 shell to copy a live database."
)
INVENTED = "SQLite backups should be uploaded to a blockchain ledger every hour."
# What the 0.5B model wrote as new dimensions: sentences from its gap evaluation.
SENTENCE_GAPS = [
    "The research does not provide any information about the importance of WAL mode.",
    "Checkpoint starvation by long-running readers is a key finding.",
]
# Its report: nothing a source supports.
REJECTED_REPORT = "```json\n" + json.dumps({"report": "SQLite is a database."}) + "\n```\n"


@pytest.fixture
async def runtime(
    tmp_path: Path, paths: Paths, queued: type[QueuedProvider]
) -> AsyncIterator[Runtime]:
    notes = write_notes(tmp_path / "notes", NOTES)
    text = research_config(
        notes, dimensions=2, max_rounds=1, dimension_concurrency=1, sources_per_dimension=6
    )
    async with scifact_runtime(text + '\n[llm]\nprovider = "queued"\n', paths) as rt:
        yield rt


def _summary(points: list[tuple[str, int]], key: str = "") -> str:
    """A dimension summary as a small model writes it: the summary is its points run together,
    each point citing a passage number of the dimension's own list (often the wrong one)."""
    summary = " ".join(text for text, _ in points)
    return json.dumps(
        {
            "summary": summary,
            "keyFinding": key or points[0][0],
            "points": [{"text": text, "source": n} for text, n in points],
        }
    )


def _report_parts(markdown: str) -> tuple[str, dict[int, str]]:
    body, _, listing = markdown.partition("\n## Sources\n")
    listed = {int(n): loc for n, loc in re.findall(r"^(\d+)\. .*`([^`]+)`$", listing, re.M)}
    return body, listed


def _cited_statements(body: str) -> list[tuple[str, list[int]]]:
    """(sentence, numbers) for every cited sentence of the body, key-finding bullets included."""
    found = []
    for line in body.splitlines():
        if line.startswith("#"):
            continue
        line = re.sub(r"^\s*-\s+\*\*[^*]+\*\*:\s*", "", line)
        for text, marks in re.findall(r"([^\[\]]+?)((?:\s*\[\d+(?:,\s*\d+)*\])+)", line):
            numbers = [int(n) for n in re.findall(r"\d+", marks)]
            found.append((text.strip(), numbers))
    return found


def _sources_by_number(saved: Any) -> dict[int, dict[str, Any]]:
    return {n: s for n, s in enumerate(saved.sources, start=1)}


def _held(sentence: str, passage: str) -> bool:
    return normalise(strip_markers(sentence)).rstrip(".") in normalise(passage)


async def test_a_fallback_report_checks_the_models_findings_and_says_each_once(
    runtime: Runtime, queued: type[QueuedProvider]
) -> None:
    queued.push(json.dumps({"dimensions": ["WAL checkpoints", "Backup methods"]}))
    # Every point cites a number the model picked: the WAL sentences name a backup passage
    # (or no listed one); a point is given twice with two numbers; one is invented.
    wal = _summary([(GROWS, 6), (GROWS, 5), (AUTO, 6), (INVENTED, 1)])
    queued.push(wal)
    backup = _summary([(BACKUP_API, 6), (GROWS, 3), (BACKUP_API, 2)])
    queued.push(backup)
    queued.push(
        json.dumps(
            {"gaps": ["Nothing on integrity checks."], "newDimensions": [*SENTENCE_GAPS, "vacuum."]}
        )
    )
    queued.push(_summary([("VACUUM rebuilds the database file.", 1)]))
    queued.push(REJECTED_REPORT)
    question = "How should I back up and maintain a SQLite database in WAL mode?"
    jobs, job = await completed_job(runtime, question, dimensions=2, rounds=1)
    events = await jobs.store.events(job.id)
    fallbacks = [e.data for e in events if e.type == "fallback"]
    assert [(f["step"], f["part"]) for f in fallbacks] == [("synthesis", "report")]

    # The gap step's sentences are not dimensions; its short name is, without the full stop.
    started = [e.data["dimension"] for e in events if e.type == "dimension_started"]
    assert started == ["WAL checkpoints", "Backup methods", "Vacuum"]
    evaluation = next(e.data for e in events if e.type == "evaluate_complete")
    assert evaluation["newDimensions"] == ["Vacuum"]

    saved = await jobs.store.report(job.id)
    assert saved is not None
    body, listed = _report_parts(saved.markdown)
    headings = re.findall(r"^## (.+)$", body, re.M)
    assert not any(h.rstrip().endswith(".") or len(h.split()) > 6 for h in headings), headings
    by_number = _sources_by_number(saved)
    statements = _cited_statements(body)
    assert statements, body
    # Every cited sentence is held by a passage it cites.
    for text, numbers in statements:
        assert any(_held(text, by_number[n]["passage"]) for n in numbers), (text, numbers, body)
    grows = [numbers for text, numbers in statements if text == GROWS]
    assert grows and all(
        "sqlite-wal.md" in by_number[n]["location"] for numbers in grows for n in numbers
    )
    assert INVENTED.rstrip(".") not in body  # no source holds it: not in the builtin body
    # Each statement is said once in the sections (the key findings list sums them up).
    sections = body.split("## Key findings", 1)[-1].split("\n\n", 2)[-1]
    said = [normalise(t) for t, _ in _cited_statements(sections)]
    assert len(said) == len(set(said)), sections
    # The Sources list holds exactly the sources the report cites.
    cited = {n for _, numbers in statements for n in numbers}
    assert set(listed) == cited == set(range(1, len(listed) + 1)), (listed, body)
    assert len(saved.sources) == len(listed)
    assert f"draws on {len(listed)} source" in body
    complete = next(e.data for e in events if e.type == "synthesis_complete")
    assert complete["sourceCount"] == len(listed)


def _assert_quad9_cited_to_quad9(saved: Any, body: str) -> None:
    """The report states the Quad9 sentence, and every number it cites holds Quad9."""
    by_number = _sources_by_number(saved)
    statements = [(t, n) for t, n in _cited_statements(body) if "Quad9" in t]
    assert statements, body
    for text, numbers in statements:
        assert all("Quad9" in by_number[n]["passage"] for n in numbers), (text, numbers, body)


async def test_a_fallback_report_for_one_dimension_lists_only_its_cited_note(
    runtime: Runtime, queued: type[QueuedProvider]
) -> None:
    quad9 = "The Pi-hole forwards queries it cannot answer from its cache to Quad9 at 9.9.9.9."
    queued.push(json.dumps({"dimensions": ["Upstream resolver"]}))
    # The same sentence twice, the second citing a passage that does not mention Quad9; a
    # fragment for a key finding.
    queued.push(_summary([(quad9, 2), (quad9, 1)], key="The Pi-hole's DNS resolver"))
    queued.push("Pi-hole is great and everyone should use it.\n")
    jobs, job = await completed_job(
        runtime, "Which DNS resolver does the Pi-hole forward to?", dimensions=1, rounds=0
    )
    saved = await jobs.store.report(job.id)
    assert saved is not None
    body, listed = _report_parts(saved.markdown)
    _assert_quad9_cited_to_quad9(saved, body)
    sections = body.split("## Key findings", 1)[-1].split("\n\n", 2)[-1]
    assert sections.count("Quad9") == 1, body
    assert "DNS resolver [" not in body and "DNS resolver." not in body
    assert all("dns.md" in location for location in listed.values()), listed


async def test_a_fallback_after_model_text_that_cites_keeps_every_number(
    runtime: Runtime, queued: type[QueuedProvider]
) -> None:
    """What the model wrote has streamed with the numbers every source had: the sources keep
    them, so a "[3]" it left stands for the source it stood for."""
    quad9 = "The Pi-hole forwards queries it cannot answer from its cache to Quad9 at 9.9.9.9."
    queued.push(json.dumps({"dimensions": ["Upstream resolver"]}))
    queued.push(_summary([(quad9, 2)]))
    queued.push("Yes [3].\n")  # too short to claim anything: its marker is not checked
    jobs, job = await completed_job(
        runtime, "Which DNS resolver does the Pi-hole forward to?", dimensions=1, rounds=0
    )
    saved = await jobs.store.report(job.id)
    assert saved is not None
    body, listed = _report_parts(saved.markdown)
    assert "Yes [3]" in body and 3 in listed
    _assert_quad9_cited_to_quad9(saved, body)  # the builtin body followed


async def test_a_dimension_whose_findings_no_source_holds_is_summarised_from_its_sources(
    runtime: Runtime, queued: type[QueuedProvider]
) -> None:
    queued.push(json.dumps({"dimensions": ["Upstream resolver", "DHCP"]}))
    queued.push(_summary([("The Pi-hole forwards every query to Google at 8.8.8.8 daily.", 1)]))
    queued.push(_summary([("The router hands out the Pi-hole's address over DHCP.", 1)]))
    queued.push("Pi-hole is great and everyone should use it.\n")
    jobs, job = await completed_job(
        runtime, "Which DNS resolver does the Pi-hole forward to?", dimensions=2, rounds=0
    )
    saved = await jobs.store.report(job.id)
    assert saved is not None
    body, _listed = _report_parts(saved.markdown)
    assert "Google" not in body
    # Not "nothing in the sources addresses" it: the builtin engine quotes its sources.
    assert "addresses" not in body and "## Upstream resolver" in body, body
    by_number = _sources_by_number(saved)
    section = body.split("## Upstream resolver", 1)[1].split("\n## ", 1)[0]
    statements = _cited_statements(section)
    assert statements, body
    for text, numbers in statements:
        assert any(_held(text, by_number[n]["passage"]) for n in numbers), (text, body)


def test_a_gap_steps_new_dimension_is_a_short_name() -> None:
    from localresearch.research.structured import dimension_name

    assert dimension_name("Integrity checks") == "Integrity checks"
    assert dimension_name("Checkpoint tuning.") == "Checkpoint tuning"
    assert dimension_name("vacuum") == "Vacuum"
    assert dimension_name("“WAL file size”") == "WAL file size"
    assert dimension_name("**Backup schedule**") == "Backup schedule"
    for sentence in (
        *SENTENCE_GAPS,
        "WAL mode is important.",
        "How often should backups run?",
        "Does the research cover restores",
        "Backup schedules, retention periods and the offsite copies of every database file",
        "The research does not say.",
    ):
        assert dimension_name(sentence) is None, sentence


def _note(name: str, text: str) -> Source:
    location = f"{name}:1-{len(text.splitlines())}"
    return Source(Source.make_id(location, text), name, location, "", text, "memory")


def test_paraphrases_of_one_passage_sentence_are_said_once() -> None:
    wal = _note("sqlite-wal.md", NOTES["sqlite-wal.md"])
    backup = _note("sqlite-backup.md", NOTES["sqlite-backup.md"])
    lets = "SQLite WAL mode is a feature that lets readers continue while a writer appends."
    also = "Checkpoints let readers continue while a writer appends to the WAL file."
    results = [
        DimensionResult("WAL", 0, lets, lets, [backup, wal], [Point(lets, backup.id)]),
        DimensionResult("Readers", 1, also, also, [wal, backup], [Point(also, backup.id)]),
    ]
    checked = checked_findings("How do I run SQLite in WAL mode?", results, [backup, wal])
    # Cited to the note that says it; the second dimension repeats the first one's statement.
    said = [[(p.text, p.source_id) for p in r.points] for r in checked]
    assert said == [[(lets, wal.id)], [(lets, wal.id)]]
    numbering, _ordered = number_sources(checked)
    report = "".join(extractive_paragraphs("How do I run SQLite?", checked, numbering))
    assert report.count(lets) == 2  # its key finding, and its section
    assert "“Readers” adds nothing the sections above do not already say" in report
    assert "addresses" not in report


def test_a_points_label_is_no_part_of_the_statement() -> None:
    """A small model labels its points with a passage's title ("SQLite WAL mode: …"): the
    statement goes without it, cited to the passage that holds it."""
    intro, _, checkpoints = NOTES["sqlite-wal.md"].partition("## Checkpoints")
    wal = _note("sqlite-wal.md", intro)
    later = _note("sqlite-wal-checkpoints.md", checkpoints)
    labelled = "SQLite WAL mode: Copies its pages back into the database file."
    results = [
        DimensionResult("WAL", 0, labelled, labelled, [wal, later], [Point(labelled, wal.id)])
    ]
    checked = checked_findings("How does SQLite WAL mode work?", results, [wal, later])
    assert [(p.text, p.source_id) for p in checked[0].points] == [
        ("Copies its pages back into the database file.", later.id)
    ]
