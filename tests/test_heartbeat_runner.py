"""The adapter that runs tasks on the runtime's services, including its fallbacks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from localresearch.errors import Unavailable
from localresearch.heartbeat.runner import ServicesTaskRunner
from localresearch.memory.types import SearchHit
from localresearch.research.manager import JobView


class Notes:
    """A tiny MemorySearcher over fixed passages."""

    async def search(self, query: str, limit: int = 10) -> list[SearchHit]:
        hits = [
            SearchHit(
                "notes/sqlite.md", "/w/notes/sqlite.md", "WAL lets readers\nrun on.", 2.0, 3, 4
            ),
            SearchHit("MEMORY.md", "/w/MEMORY.md", "Unrelated.", 0.1, 1, 1),
        ]
        return [h for h in hits if any(w in h.content.lower() for w in query.lower().split())][
            :limit
        ]


class Chat:
    async def answer(self, message: Any, **options: Any) -> dict[str, Any]:
        return {
            "response": f"Answer to {message} [1]",
            "citations": [{"n": 1, "file": "notes/sqlite.md", "line_start": 3, "line_end": 4}],
        }


class Row:
    def __init__(self, job_id: str) -> None:
        self.id = job_id


class Jobs:
    def __init__(self) -> None:
        self.status = "running"
        self.report = "# Report\n\n" + "Long finding. " * 200
        self.waited: list[str] = []

    async def submit(self, query: str) -> Row:
        return Row("res_1")

    async def snapshot(self, job_id: str) -> JobView:
        error = "provider failed" if self.status == "error" else None
        job = SimpleNamespace(id=job_id, status=self.status, error=error)
        report = self.report if self.status == "complete" else None
        return JobView(job, report)  # type: ignore[arg-type]

    async def wait(self, job_id: str) -> None:
        self.waited.append(job_id)
        if job_id == "gone":
            raise LookupError(job_id)


async def test_wait_research_uses_the_job_managers_wait_and_never_raises() -> None:
    jobs = Jobs()
    runner = ServicesTaskRunner(jobs=jobs)
    await runner.wait_research("res_1")
    await runner.wait_research("gone")
    assert jobs.waited == ["res_1", "gone"]
    await ServicesTaskRunner().wait_research("res_1")  # no jobs service: returns at once


async def test_ask_uses_chat_with_sources() -> None:
    result = await ServicesTaskRunner(chat=Chat(), memory=Notes()).ask("WAL?")
    assert result.summary == "Answer to WAL? [1]\n\nSources:\n[1] notes/sqlite.md:3-4"
    assert not result.pending


async def test_ask_falls_back_to_memory_search() -> None:
    runner = ServicesTaskRunner(memory=Notes())
    result = await runner.ask("wal readers")
    assert result.summary.startswith("Closest passages in memory:")
    assert "- notes/sqlite.md:3-4: WAL lets readers run on." in result.summary
    nothing = await runner.ask("quantum")
    assert nothing.summary == "Nothing in memory matched this question."


async def test_without_services_tasks_fail_clearly() -> None:
    runner = ServicesTaskRunner()
    with pytest.raises(Unavailable):
        await runner.ask("q")
    with pytest.raises(Unavailable):
        await runner.research("q")


async def test_research_is_submitted_then_followed() -> None:
    jobs = Jobs()
    runner = ServicesTaskRunner(jobs=jobs)
    started = await runner.research("RAG?")
    assert started.job_id == "res_1" and started.pending
    assert started.link == "/api/research/deep/res_1/report?format=md"
    assert await runner.research_result("res_1") is None
    jobs.status = "complete"
    done = await runner.research_result("res_1")
    assert done is not None and not done.failed
    # no report headings in the log: the first paragraph, cut short
    assert done.summary.startswith("Long finding.") and done.summary.endswith(" …")
    assert "#" not in done.summary and len(done.summary) < 800
    jobs.report = "# Q\n\nIntro.\n\n## Key findings\n\n- **A**: one [1].\n\n## A\n\nMore."
    digest = await runner.research_result("res_1")
    assert digest is not None and digest.summary == "- **A**: one [1]."
    jobs.status = "cancelled"
    cancelled = await runner.research_result("res_1")
    assert cancelled is not None and cancelled.failed
    assert cancelled.summary == "Cancelled."  # the fake keeps no partial report
    jobs.status = "error"
    failed = await runner.research_result("res_1")
    assert failed is not None and failed.failed and "provider failed" in failed.summary


def test_digest_demotes_headings_outside_code() -> None:
    from localresearch.heartbeat.digest import demote_headings, quote, report_digest

    assert demote_headings("## Notes ##\nTitle\n---\n```\n# kept\n```") == (
        "**Notes**\n**Title**\n```\n# kept\n```"
    )
    assert quote("# H\n\ntext") == "> **H**\n>\n> text"
    assert report_digest("# Only a title") == ""
    assert report_digest("# T\n\n## Summary\n\nShort.\n\n## More\n\nx") == "Short."
