"""Deep research jobs: the jobs API's shapes. Its camelCase wire names live here only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import msgspec

from localresearch.api.base import UNSET, Model, UnsetType

if TYPE_CHECKING:
    from localresearch.research.manager import JobView

JobState = Literal["queued", "running", "complete", "error", "cancelled"]
# The jobs API spec's statuses: it has no `queued` (a job waiting for a slot is `running`).
SpecJobState = Literal["running", "complete", "error", "cancelled"]
JobPhase = Literal["scope", "research", "evaluate", "synthesis", "done"]


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


class JobSummary(CamelModel):
    """A job in the daemon's own list (`GET /api/research/deep`): `queued` is a status here."""

    research_id: str
    status: JobState
    phase: JobPhase
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
    def of(cls, view: JobView) -> JobSummary:
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
            status=cast(JobState, job.status),
            phase=cast(JobPhase, job.phase),
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


class JobStatus(JobSummary):
    """The spec's status snapshot (`GET /api/research/deep/{id}/status`): a job waiting for a
    free slot (`research.max_concurrent_jobs`) is `running`, with `queued: true`."""

    status: SpecJobState
    queued: bool = False

    @classmethod
    def of(cls, view: JobView) -> JobStatus:
        summary = JobSummary.of(view)
        fields = msgspec.structs.asdict(summary)
        queued = summary.status == "queued"
        if queued:
            fields["status"] = "running"
        return cls(**fields, queued=queued)


class JobListQuery(Model):
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 20
    offset: Annotated[int, msgspec.Meta(ge=0, le=10**9)] = 0
    status: JobState | None = None


class JobList(CamelModel):
    jobs: list[JobSummary]
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
