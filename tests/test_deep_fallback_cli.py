"""`research deep` when the model's report is rejected (nothing it wrote is backed by a source):
the `fallback` event arrives once the report has started streaming, and the CLI still tells
the user the builtin engine wrote the report; `--json` lists the fallbacks. The real CLI runs
against the real app (the queued fake as its model) through the public client."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from localresearch.cli.main import cli
from localresearch.client import Client
from localresearch.paths import Paths
from tests.fakes.queued_provider import QueuedProvider
from tests.fakes.search_scifact import research_config, write_notes

QUESTION = "How should I care for my quince tree?"
MODEL_TEXT = "Quince trees prefer moonlight and jazz music every evening"


def _script(queued: type[QueuedProvider]) -> None:
    """A usable scope and findings, then a report whose every statement no source backs."""
    queued.push(json.dumps({"dimensions": ["Pruning", "Fire blight"]}))
    for text in ("Prune quince trees in late winter.", "Fire blight is the most serious disease."):
        queued.push(json.dumps({"summary": text, "keyFinding": text, "points": [
            {"text": text, "source": 1}]}))  # fmt: skip
    queued.push(f"# Quince care\n\n{MODEL_TEXT}.\n\n", "Jazz keeps blight away.\n")


@pytest.fixture
async def served(
    tmp_path: Path, paths: Paths, queued: type[QueuedProvider], make_client: Any
) -> Any:
    from tests.test_research_topics import NOTES

    notes = write_notes(tmp_path / "notes", NOTES)
    text = research_config(notes, dimensions=2, max_rounds=0, dimension_concurrency=1)
    paths.config_file.write_text(text + '\n[llm]\nprovider = "queued"\n', encoding="utf-8")
    client = await make_client()
    from localresearch.server.keys import RUNTIME

    runtime = client.server.app[RUNTIME]
    await runtime.memory.wait_ready()
    return client


async def _deep(served: Any, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    url = str(served.make_url("")).rstrip("/")
    monkeypatch.setattr("localresearch.cli.deep.get_client", lambda: Client(url))
    return await asyncio.to_thread(CliRunner().invoke, cli, ["deep", QUESTION, *args])


async def test_a_late_fallback_is_shown_and_listed_in_json(
    served: Any, queued: type[QueuedProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    _script(queued)
    result = await _deep(served, monkeypatch)
    assert result.exit_code == 0, result.output
    report, note = result.stdout, " ".join(result.stderr.split())
    assert report.startswith("# Quince care") and MODEL_TEXT in report  # streamed before it
    assert "## Sources" in report and "Prune quince trees in late winter" in report
    assert "The model's report was not backed by its sources" in note
    assert "the builtin engine wrote the report from the findings" in note
    assert "no statement of the model's report was backed by a source" in note
    assert "builtin engine" not in report  # stdout holds only the report

    _script(queued)
    as_json = await _deep(served, monkeypatch, "--json")
    assert as_json.exit_code == 0, as_json.output
    snapshot = json.loads(as_json.stdout)
    assert snapshot["status"] == "complete" and MODEL_TEXT in snapshot["report"]
    assert [(f["step"], f["part"]) for f in snapshot["fallbacks"]] == [("synthesis", "report")]
    assert "backed by a source" in snapshot["fallbacks"][0]["reason"]


def test_fallbacks_before_and_after_the_report_starts(capsys: pytest.CaptureFixture[str]) -> None:
    """One before the report: under the progress table; one once it streams: a line on stderr."""
    from localresearch.cli.deep import follow
    from localresearch.events import Event

    script = [
        ("scope_complete", {"dimensions": ["Pruning"]}),
        ("fallback", {"step": "dimension", "part": "findings (Pruning)", "reason": "empty"}),
        ("synthesis_started", {}),
        ("synthesis_delta", {"text": "# Quince care\n\n"}),
        ("fallback", {"step": "synthesis", "part": "report", "reason": "nothing backed"}),
        ("synthesis_delta", {"text": "Prune in late winter [1].\n\n"}),
        ("done", {"status": "complete"}),
    ]

    class Scripted:
        def research_events(self, _job_id: str, _after: int | None) -> Any:
            for number, (kind, data) in enumerate(script, 1):
                yield Event(kind, data, id=number)

    assert follow(Scripted(), "res_1") == "complete"  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    err = " ".join(err.split())
    assert out == "# Quince care\n\nPrune in late winter [1].\n\n"
    assert "The model's reply was unusable for findings (Pruning): builtin engine used" in err
    assert "The model's report was not backed by its sources (nothing backed)" in err
