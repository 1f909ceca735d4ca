"""Deep research with the builtin engine over a small folder of notes on three topics: the
dimensions are named by the question's topics (not its verbs nor a scoping reply), the note
about the topic is quoted, the report counts the sections it shows and lists only the sources it
cites."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from localresearch.paths import Paths
from localresearch.research.builtin import question_phrases, scope_dimensions
from localresearch.research.report import extractive_paragraphs
from localresearch.research.types import DimensionResult, Point, Source
from localresearch.research_sessions.planner import read_feedback
from localresearch.research_sessions.questions import builtin_questions
from localresearch.runtime import Runtime
from tests.fakes.jobs import completed_job
from tests.fakes.search_scifact import research_config, scifact_runtime, write_notes

NOTES = {
    "network-wifi.md": """# Home Wi-Fi setup

My router sits in the hallway closet. The 5 GHz band reaches the office, the 2.4 GHz band
reaches the garden.

## Security

Use WPA3-Personal where all devices support it; the old printer only speaks WPA2.
Disable WPS: its PIN can be brute-forced in hours.
Change the default SSID so it does not reveal the router model.

## Guest network

Visitors use the guest network, which is isolated from the LAN.
""",
    "wifi-notes.txt": """Wi-Fi channels to remember.

The 2.4 GHz band has only three channels that do not overlap: 1, 6 and 11.
The 5 GHz band has many more channels and less interference, but shorter range.
""",
    "network-troubleshooting.md": """# Network troubleshooting

Slow Wi-Fi in the bedroom is usually the microwave on the 2.4 GHz band.
If dig times out, restart the Pi-hole service with `pihole restartdns`.
""",
    "sqlite-wal.md": """# SQLite WAL mode

WAL mode allows readers to keep reading while one writer writes.
A long-running reader can stop the checkpoint from completing, and the WAL keeps growing.
""",
    "sqlite-fts5.md": """# Full-text search with FTS5

The porter tokenizer stems English words so that "running" matches "run".
Prefix queries need a prefix index to be fast.
""",
    "sourdough.md": """# Sourdough starter

Feed the starter twice a day: equal weights of flour and water.
A healthy starter doubles within 4 to 8 hours of feeding.
""",
}


@pytest.fixture
async def runtime(tmp_path: Path, paths: Paths) -> AsyncIterator[Runtime]:
    notes = write_notes(tmp_path / "notes", NOTES)
    async with scifact_runtime(research_config(notes, dimensions=4, max_rounds=1), paths) as rt:
        yield rt


def test_question_phrases_leave_out_the_questions_verbs() -> None:
    assert question_phrases("What does WAL mode allow?") == ["WAL mode"]
    assert question_phrases("How do I back up the database?") == ["database"]
    assert question_phrases("How do I harden the router's security?") == ["router's security"]
    assert question_phrases("How to harden a router") == ["router"]
    assert question_phrases("Wi-Fi security") == ["Wi-Fi security"]
    assert question_phrases("What is the quince tree?") == ["quince tree"]


def test_a_determiner_names_no_dimension() -> None:
    sources = [
        Source(f"s{i}", "Guest network", f"n.md:{i}", "", text, "memory")
        for i, text in enumerate(
            [
                "The guest password rotates every three months.",
                "Update the router firmware every quarter.",
                "Every device uses the Pi-hole for DNS.",
            ]
        )
    ]
    assert "Every" not in scope_dimensions("Wi-Fi security", sources, 4)


def test_notes_found_on_a_topic_are_not_said_to_say_little() -> None:
    found = [Source("s", "Security", "n.md:5-10", "", "Disable WPS on the router.", "memory")]
    assert not builtin_questions("Wi-Fi security", found)[0].startswith("Your notes say little")
    assert builtin_questions("Wi-Fi security", [])[0].startswith("Your notes say little")


def test_a_scoping_reply_names_no_task() -> None:
    for reply in ("current", "Current.", "the latest", "everything"):
        assert read_feedback("Wi-Fi security", reply).focus == [], reply
    assert read_feedback("Wi-Fi security", "guest network").focus == ["guest network"]


def test_the_report_counts_every_dimension_and_the_sections_it_shows() -> None:
    said = Point("WAL mode allows readers to keep reading while one writer writes.", "a")
    other = Point("A checkpoint copies the WAL back into the database.", "b")
    results = [
        DimensionResult("WAL mode", 0, said.text, said.text, points=[said, other]),
        DimensionResult("Readers", 1, said.text, said.text, points=[said]),
        DimensionResult("Replication", 2, "", "", points=[]),
    ]
    body = "".join(extractive_paragraphs("What does WAL mode allow?", results, {"a": 1, "b": 2}))
    sections = [h for h in re.findall(r"^## (.+)$", body, flags=re.M) if h != "Key findings"]
    assert sections == ["WAL mode"]
    # Every dimension researched is counted, as the progress table shows them, and each one
    # without a section is named below.
    assert "across 3 research dimensions (1 with a section of its own)." in body
    assert "“Readers” adds nothing the sections above do not already say." in body
    assert "Nothing in the 2 sources addresses “Replication”." in body


async def _report(runtime: Runtime, question: str) -> tuple[str, str, list[str]]:
    jobs, job = await completed_job(runtime, question)
    events = await jobs.store.events(job.id)
    dimensions = [e.data["dimension"] for e in events if e.type == "dimension_started"]
    saved = await jobs.store.report(job.id)
    assert saved is not None
    body, _, listing = saved.markdown.partition("\n## Sources\n")
    return body, listing, dimensions


async def test_the_note_about_the_topic_is_quoted_and_only_cited_sources_listed(
    runtime: Runtime,
) -> None:
    body, listing, dimensions = await _report(runtime, "Wi-Fi security")
    # The Security section of the Wi-Fi note is what the question is about: it is quoted.
    assert "Disable WPS: its PIN can be brute-forced in hours." in body
    assert "[Security](" in listing and "network-wifi.md" in listing
    # Every listed source is cited, and notes on other topics are not listed.
    listed = [int(n) for n in re.findall(r"^(\d+)\. ", listing, flags=re.M)]
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", body)}
    assert listed and set(listed) == cited
    assert "sourdough" not in listing and "fts5" not in listing
    # The stated number of dimensions is the number researched; the sections shown are said
    # when fewer.
    sections = [h for h in re.findall(r"^## (.+)$", body, flags=re.M) if h != "Key findings"]
    stated = re.search(r"across (\d+) research dimensions?(?: \((\d+) with a section)?", body)
    assert stated is not None and int(stated.group(1)) == len(set(dimensions))
    assert int(stated.group(2) or stated.group(1)) == len(sections)


async def test_dimensions_are_not_the_questions_verbs(runtime: Runtime) -> None:
    body, listing, dimensions = await _report(runtime, "What does WAL mode allow?")
    assert dimensions and not any(d.lower().endswith("allow") for d in dimensions), dimensions
    assert "WAL mode allows readers to keep reading while one writer writes." in body
    assert "network-wifi" not in listing and "sourdough" not in listing
