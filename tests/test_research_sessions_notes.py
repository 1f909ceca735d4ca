"""A guided session with the builtin engine over a small folder of notes on three topics
(sourdough, SQLite, cycling): the questions offer only aspects of the passages about the topic,
the plan's tasks come from those passages first, and a task's key finding and section come
from the passages about that task, an .html note used like any other."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from localresearch.access.roles import ALL, Principal
from localresearch.paths import Paths
from localresearch.research_sessions.flow import SessionService
from localresearch.research_sessions.settings import SessionSettings
from localresearch.research_sessions.store import Task
from tests.fakes.search_scifact import research_config, scifact_runtime, write_notes

TOPIC = "Baking sourdough bread at home"
ALICE = Principal("key_alice", "user", ALL - {"admin"}, "key")
BUILTIN = SessionSettings("builtin", "extractive", "extractive", "none", max_results=6)

NOTES = {
    "sourdough-starter.md": """# Sourdough starter

A sourdough starter is a culture of wild yeast and lactic acid bacteria kept in flour and water.
Feed the starter twice a day with equal weights of flour and water.
A healthy starter doubles within 4 to 8 hours of feeding.
""",
    "reading-list.md": """# Reading list

Tartine Bread by Chad Robertson covers the basic country loaf and sourdough bread at home.
Flour Water Salt Yeast explains baking schedules for bread.
""",
    "fermentation.html": """<html><head><title>Fermentation</title></head><body>
<h1>Bulk fermentation</h1>
<p>Fermentation temperature decides how fast the sourdough dough rises.</p>
<p>At 24 to 26 °C bulk fermentation takes about 4 to 5 hours; at 20 °C it takes 8 hours.</p>
<p>A cold retard in the fridge at 4 °C overnight slows fermentation and deepens the flavour.</p>
</body></html>
""",
    "baking.md": """# Baking the loaf

Bake the bread in a preheated Dutch oven at 250 °C for 20 minutes with the lid on.
Remove the lid and bake the loaf another 20 to 25 minutes until the crust is dark.
Let the bread cool for an hour before slicing.
""",
    "cycling-training.md": """# Cycling training zones

Training zones are set from functional threshold power.
Zone 2 training builds aerobic base at home on the trainer.
Most training zones plans put 80 percent of the time in zone 2.
""",
    "cycling-winter.md": """# Winter riding

In winter I ride indoors at home; training zones keep the sessions honest.
Hot rooms make indoor training zones feel harder, so use a fan at home.
""",
    "cycling-bike.md": """# Bike maintenance

Clean and lube the chain every 300 km.
Training zones on the head unit show power and heart rate at home.
""",
    "sqlite-wal.md": """# SQLite WAL mode

WAL mode allows readers to keep reading while one writer writes.
A long-running reader can stop the checkpoint from completing, and the WAL keeps growing.
""",
}


@pytest.fixture
async def service(tmp_path: Path, paths: Paths) -> AsyncIterator[SessionService]:
    notes = write_notes(tmp_path / "notes", NOTES)
    async with scifact_runtime(research_config(notes, dimensions=4), paths) as rt:
        assert rt.research_sessions is not None
        yield rt.research_sessions


async def test_the_questions_offer_only_aspects_of_the_topic(service: SessionService) -> None:
    row = await service.create(ALICE, BUILTIN)
    asked = await service.questions(row.id, ALICE, TOPIC)
    offered = re.findall(r"“([^”]+)”|\"([^\"]+)\"", asked.questions)
    assert offered, asked.questions
    assert "training zones" not in asked.questions.lower(), asked.questions
    assert "zone" not in asked.questions.lower(), asked.questions


async def test_a_tasks_finding_comes_from_the_note_about_the_task(
    service: SessionService,
) -> None:
    row = await service.create(ALICE, BUILTIN)
    await service.questions(row.id, ALICE, TOPIC)
    await service.feedback(row.id, ALICE, "a brief overview")
    planned = await service.plan(row.id, ALICE)
    # The plan's tasks are aspects of the notes on the topic, then general ones; another
    # subject's aspects only fill a count the others cannot.
    assert len(planned.tasks) == 3
    assert not any("zone" in t.focus.lower() for t in planned.tasks), planned.tasks
    task = Task(query=f"Fermentation temperature {TOPIC}", focus="Fermentation temperature")
    await service.edit_plan(row.id, ALICE, [task])
    done = await service.execute(row.id, ALICE)
    assert done.phase == "completed", done.error
    report = done.final_report
    body, _, listing = report.partition("\n## Sources\n")
    finding = re.search(r"\*\*Fermentation temperature\*\*\W+(.+)", body)
    assert finding is not None, body
    # The key finding speaks of the task's own words, not of the topic at large.
    assert "°C" in finding.group(1) or "temperature" in finding.group(1).lower(), body
    assert "A sourdough starter is a culture" not in finding.group(1)
    # The .html note holding the temperatures is quoted and cited.
    assert "24 to 26 °C" in body, body
    assert "fermentation.html" in listing, listing
