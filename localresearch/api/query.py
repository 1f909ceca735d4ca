"""The query API (a compatible surface, its own paths and envelope): /query and its stream,
batch and background forms, /metrics, /capabilities and /config.

Requests carry `"version"`; responses echo it. VERSIONS lists every version the surface knows:
`current` and `deprecated` ones are served (a deprecated one is marked so in /openapi.json
while it lasts), `removed` ones answer 410 Gone; anything else is 400. The list is in /openapi.json
(`info.x-query-api-versions`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from localresearch.api.base import UNSET, Model, UnsetType
from localresearch.api.operations import Operation, Surface, register

if TYPE_CHECKING:
    from localresearch.query.service import Progress

VERSIONS: dict[str, Literal["current", "deprecated", "removed"]] = {
    "1": "current",
    "0": "removed",
}
CURRENT_VERSION = "1"

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
Loops = Annotated[int, msgspec.Meta(ge=0, le=5)]
Dimensions = Annotated[int, msgspec.Meta(ge=1, le=6)]
Url = Annotated[str, msgspec.Meta(max_length=2048)]


class StrictModel(Model, forbid_unknown_fields=True):
    """A request of the query API: an unknown field is refused (400 naming it)."""


def versions_document() -> list[dict[str, Any]]:
    """Every version with its status; deprecated and removed ones are marked deprecated."""
    return [{"version": v, "status": s, "deprecated": s != "current"} for v, s in VERSIONS.items()]


Version = Annotated[
    str,
    msgspec.Meta(
        description="The contract version: unknown → 400, removed → 410 Gone",
        extra_json_schema={"x-versions": versions_document()},
    ),
]


class QueryRequest(StrictModel):
    version: Version
    query: Text
    loops: Loops | None = None
    dimensions: Dimensions | None = None
    model: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    webhook_url: Url | None = None


class BatchRequest(StrictModel):
    version: Version
    queries: Annotated[list[QueryRequest], msgspec.Meta(min_length=1, max_length=1000)]


class BatchPage(StrictModel):
    page: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10


class StreamParam(StrictModel):
    stream: bool = False


class TokenCounts(Model):
    input: int
    output: int
    total: int


class QueryMetrics(Model):
    cycles_completed: int
    total_tokens: TokenCounts


class QueryResponse(Model):
    version: str
    answer: str
    citations: list[str]
    reasoning: list[str]
    metrics: QueryMetrics
    research_id: str | UnsetType = UNSET  # the research job behind the answer


class QueryStep(Model):
    kind: str
    text: str


class QueryPartial(Model):
    """A line of a query stream after each step: the step, and the result so far."""

    version: str
    partial: Literal[True]
    step: QueryStep
    reasoning: list[str]
    citations: list[str]
    metrics: QueryMetrics


def partial_of(progress: Progress) -> QueryPartial:
    """The stream line for the core's progress after a step."""
    inputs, outputs = progress.input_tokens, progress.output_tokens
    last = progress.steps[-1]
    return QueryPartial(
        version=progress.version,
        partial=True,
        step=QueryStep(kind=last.kind, text=last.text),
        reasoning=[s.text for s in progress.steps],
        citations=progress.citations,
        metrics=QueryMetrics(
            cycles_completed=progress.cycles_completed,
            total_tokens=TokenCounts(input=inputs, output=outputs, total=inputs + outputs),
        ),
    )


class BatchResponse(Model):
    version: str
    page: int
    page_size: int
    total: int
    results: list[QueryResponse]


class QueryAccepted(Model):
    query_id: str


# GET /query/{id}: the spec shows `running` while a query runs (one not started yet included).
QueryStatus = Literal["running", "complete", "error", "canceled"]


class QueryState(Model):
    """A background query: running (status only), or finished with its result or error."""

    query_id: str
    status: QueryStatus
    version: str | UnsetType = UNSET
    answer: str | UnsetType = UNSET
    citations: list[str] | UnsetType = UNSET
    reasoning: list[str] | UnsetType = UNSET
    metrics: QueryMetrics | UnsetType = UNSET
    research_id: str | UnsetType = UNSET
    error: str | UnsetType = UNSET


class QueryCanceled(Model):
    query_id: str
    status: Literal["canceled"]


class Backend(Model):
    usable: bool
    reason: str


class Capabilities(Model):
    version: str
    api_versions: dict[str, str]
    llm_backends: list[str]
    llm_backend_status: dict[str, Backend]
    reasoning_modes: list[str]
    current_config: dict[str, Any]


class ConfigView(Model, forbid_unknown_fields=False):
    """The effective configuration: the spec's keys (`loops`, `llm_backend`, …) and every
    section of config.toml, credentials redacted."""

    reasoning_mode: str
    loops: int
    llm_backend: str
    restart_required: list[str] | UnsetType = UNSET
    overridden_by_environment: list[str] | UnsetType = UNSET


class ErrorDetail(Model):
    code: str
    message: str


class QueryError(Model):
    """The query API's error envelope: FastAPI's `detail` and the daemon's `error`."""

    detail: str
    error: ErrorDetail


class QueryStreamError(Model):
    """The last line of a stream whose research failed: the envelope, with the version."""

    version: str
    detail: str
    error: ErrorDetail


def query_envelope(code: str, message: str) -> dict[str, Any]:
    return {"detail": message, "error": {"code": code, "message": message}}


QUERY = Surface(
    "query",
    QueryError,
    "The query API: versioned requests, {detail, error} errors (docs/api.md, Query API).",
    envelope=query_envelope,
)


def operations() -> list[Operation]:
    nd = {"application/x-ndjson": "one JSON object per line; blank keep-alive lines"}
    metrics = {"text/plain": "Prometheus text exposition"}
    return [
        Operation("POST", "/query", "Research a question: answer, citations, reasoning, "
                  "metrics (?stream=true: NDJSON)", "query", body=QueryRequest,
                  query=StreamParam, response=QueryResponse, content=nd, surface=QUERY,
                  tag="query"),
        Operation("POST", "/query/stream", "Research a question, streamed as NDJSON", "query",
                  body=QueryRequest, content=nd, surface=QUERY, tag="query"),
        Operation("POST", "/query/batch", "Research one page of a list of questions", "query",
                  body=BatchRequest, query=BatchPage, response=BatchResponse, surface=QUERY,
                  tag="query"),
        Operation("POST", "/query/async", "Research a question in the background", "query",
                  body=QueryRequest, response=QueryAccepted, surface=QUERY, tag="query"),
        Operation("GET", "/query/{id}", "A background query: running, or its result", "query",
                  response=QueryState, surface=QUERY, tag="query"),
        Operation("DELETE", "/query/{id}", "Cancel a running background query", "query",
                  response=QueryCanceled, surface=QUERY, tag="query"),
        Operation("GET", "/metrics", "Prometheus metrics", "metrics", content=metrics,
                  surface=QUERY, tag="query"),
        Operation("GET", "/capabilities", "Backends, reasoning modes and current settings",
                  "capabilities", response=Capabilities, surface=QUERY, tag="query"),
        Operation("GET", "/config", "The effective configuration (credentials redacted)",
                  "config", response=ConfigView, surface=QUERY, tag="config"),
        Operation("PUT", "/config", "Change some settings (applied live where possible)",
                  "config", response=ConfigView, surface=QUERY, tag="config"),
        Operation("POST", "/config", "Replace the configuration (applied live where possible)",
                  "config", response=ConfigView, surface=QUERY, tag="config"),
        Operation("DELETE", "/config", "Reload config.toml, dropping runtime changes",
                  "config", response=ConfigView, surface=QUERY, tag="config"),
    ]  # fmt: skip


register(*operations())
