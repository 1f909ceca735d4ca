"""Running a research job to its end in the core, for tests that read its events and report."""

from __future__ import annotations

from typing import Any

from localresearch.research.manager import JobManager
from localresearch.research.store import JobRow
from localresearch.runtime import Runtime


async def completed_job(
    runtime: Runtime, question: str, **options: Any
) -> tuple[JobManager, JobRow]:
    """Submit `question` and wait for its job, which must complete (its error shown if not)."""
    jobs = runtime.jobs
    assert jobs is not None
    job = await jobs.submit(question, **options)
    final = await jobs.wait(job.id)
    assert final.status == "complete", final.error
    return jobs, job
