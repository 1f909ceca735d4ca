"""Deep research jobs: the jobs API's shapes. Its camelCase wire names live here only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from localresearch.api.base import UNSET, Model, UnsetType

if TYPE_CHECKING:
    from localresearch.research.manager import JobView

JobState = Literal["queued", "running", "complete", "error", "cancelled"]


class CamelModel(Model, rename="camel"):
    """A model of the jobs API: attributes in snake_case, wire names in camelCase."""


class StartJob(CamelModel):
    query: str
    session_id: str | None = None
    dimensions: int | None = None
    rounds: int | None = None


class JobStarted(CamelModel):
    research_id: str
    status: str


class JobStatus(CamelModel):
    research_id: str
    status: str
    phase: str
    dimensions_total: int
    dimensions_complete: int
    source_count: int
    query: str
    created_at: str
    updated_at: str
    finished_at: str | None
    last_event_id: int
    cancel_requested: bool
    session_id: str | UnsetType = UNSET
    error: str | UnsetType = UNSET
    report: str | UnsetType = UNSET
    partial_report: str | UnsetType = UNSET

    @classmethod
    def of(cls, view: JobView) -> JobStatus:
        """The snapshot of a job as the core describes it."""
        job = view.job
        report: str | UnsetType = UNSET
        partial: str | UnsetType = UNSET
        if view.report is not None:
            if job.status == "complete":
                report = view.report
            else:
                partial = view.report
        return cls(
            research_id=job.id,
            status=job.status,
            phase=job.phase,
            dimensions_total=job.dimensions_total,
            dimensions_complete=job.dimensions_complete,
            source_count=job.source_count,
            query=job.query,
            created_at=job.created_at,
            updated_at=job.updated_at,
            finished_at=job.finished_at,
            last_event_id=job.last_event_id,
            cancel_requested=bool(job.cancel_requested),
            session_id=job.session_id or UNSET,
            error=job.error or UNSET,
            report=report,
            partial_report=partial,
        )


class JobListQuery(Model):
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 20
    offset: Annotated[int, msgspec.Meta(ge=0, le=10**9)] = 0
    status: JobState | None = None


class JobList(CamelModel):
    jobs: list[JobStatus]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class ReportQuery(Model):
    format: Literal["md", "html", "json"] = "md"


class ReportJSON(CamelModel):
    research_id: str
    query: str
    status: str
    partial: bool
    markdown: str
    sources: list[dict[str, Any]]
    updated_at: str
    usage: dict[str, dict[str, int]]
