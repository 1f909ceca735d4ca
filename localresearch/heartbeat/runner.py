"""How a due task is run: the `TaskRunner` protocol, and the adapter over the runtime's services.

The heartbeat depends only on `TaskRunner`, so it can be tested with a scripted runner and does not
care which of chat, research jobs or memory search exist in a given build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from localresearch.errors import Unavailable
from localresearch.heartbeat.digest import report_digest
from localresearch.memory.types import MemorySearcher

if TYPE_CHECKING:
    from localresearch.research.manager import JobView

TERMINAL = ("complete", "cancelled", "error", "failed")


@dataclass(frozen=True)
class TaskResult:
    """What a task produced, as it goes into the day's log."""

    summary: str  # Markdown: the answer, or the report's opening
    link: str | None = None  # where to read more (a report URL path)
    job_id: str | None = None  # a research job still running: the heartbeat follows it up
    failed: bool = False  # the job finished with an error

    @property
    def pending(self) -> bool:
        return self.job_id is not None


class TaskRunner(Protocol):
    """What the heartbeat needs to run `kind: ask` and `kind: research` tasks."""

    async def ask(self, question: str) -> TaskResult: ...

    async def research(self, question: str) -> TaskResult: ...

    async def research_result(self, job_id: str) -> TaskResult | None:
        """The finished job's result, or None while it is still running."""

    async def wait_research(self, job_id: str) -> None:
        """Return when the job has ended (or cannot be followed from here); never raises."""


class _Chat(Protocol):
    async def answer(self, message: Any, **options: Any) -> dict[str, Any]: ...


class _Jobs(Protocol):
    async def submit(self, query: str) -> Any: ...

    async def snapshot(self, job_id: str) -> JobView: ...


def report_link(job_id: str) -> str:
    return f"/api/research/deep/{job_id}/report?format=md"


def export_command(job_id: str) -> str:
    """How the user reads a report: the daemon's absolute URL is not known to the core."""
    return f"research jobs export {job_id}"


def _citations(done: dict[str, Any]) -> str:
    lines: list[str] = []
    for item in done.get("citations") or []:
        if isinstance(item, dict) and item.get("file"):
            n = item.get("n", len(lines) + 1)
            lines.append(
                f"[{n}] {item['file']}:{item.get('line_start', '')}-{item.get('line_end', '')}"
            )
    return "\n".join(lines)


class ServicesTaskRunner:
    """Runs tasks on whatever the runtime has: chat for asks (memory search as a fallback), and
    research jobs for research tasks."""

    def __init__(
        self,
        chat: _Chat | None = None,
        jobs: _Jobs | None = None,
        memory: MemorySearcher | None = None,
    ) -> None:
        self.chat = chat
        self.jobs = jobs
        self.memory = memory

    async def ask(self, question: str) -> TaskResult:
        if self.chat is not None:
            # The heartbeat logs the task's result itself: don't log the answer twice.
            done = await self.chat.answer(question, record=False)
            answer = str(done.get("response", "")).strip() or "(no answer)"
            sources = _citations(done)
            body = f"{answer}\n\nSources:\n{sources}" if sources else answer
            return TaskResult(summary=body)
        if self.memory is not None:
            return await self._search_summary(question)
        raise Unavailable("neither chat nor memory search is available to answer this task")

    async def _search_summary(self, question: str) -> TaskResult:
        """Fallback without a chat service: the best matching passages from memory."""
        assert self.memory is not None
        hits = await self.memory.search(question, 3)
        if not hits:
            return TaskResult(summary="Nothing in memory matched this question.")
        parts = []
        for hit in hits:
            snippet = " ".join(hit.content.split())[:300]
            parts.append(f"- {hit.file}:{hit.line_start}-{hit.line_end}: {snippet}")
        return TaskResult(summary="Closest passages in memory:\n" + "\n".join(parts))

    async def research(self, question: str) -> TaskResult:
        if self.jobs is None:
            raise Unavailable("research jobs are not available in this daemon")
        job = await self.jobs.submit(question)
        job_id = str(job.id)
        return TaskResult(
            summary=f"Research job {job_id} started.", link=report_link(job_id), job_id=job_id
        )

    async def research_result(self, job_id: str) -> TaskResult | None:
        if self.jobs is None:
            raise Unavailable("research jobs are not available in this daemon")
        view = await self.jobs.snapshot(job_id)
        status = view.job.status
        if status not in TERMINAL:
            return None
        report = view.report or ""
        if status == "complete":
            summary = report_digest(str(report)) or "(empty report)"
        elif status == "cancelled":
            partial = report_digest(str(report))
            summary = f"Cancelled. Partial findings:\n\n{partial}" if partial else "Cancelled."
        else:
            summary = f"Failed: {view.job.error or status}"
        return TaskResult(
            summary=summary, link=report_link(job_id), failed=status not in ("complete",)
        )

    async def wait_research(self, job_id: str) -> None:
        wait = getattr(self.jobs, "wait", None)
        if wait is None:
            return
        try:
            await wait(job_id)
        except Exception:  # an unknown job, a store error: the heartbeat's polling takes over
            return
