"""The research-sessions API (specs/research-sessions-api.md): its shapes, envelope and
operations. Its camelCase wire names and `{"success", "data" | "error"}` envelope live here."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from localresearch.api.base import UNSET, Model, UnsetType
from localresearch.api.operations import Operation, Surface, register

PREFIX = "/api/research/sessions"


class CamelModel(Model, rename="camel"):
    """A model of this surface: attributes in snake_case, wire names in camelCase."""


class ErrorBody(Model):
    message: str
    code: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class ErrorEnvelope(Model):
    """{"success": false, "error": {"message", "code", "details"}}."""

    success: bool
    error: ErrorBody


_SPEC_CODES = {
    "unauthorized": "AUTHENTICATION_REQUIRED",
    "forbidden": "ACCESS_DENIED",
    "not_found": "SESSION_NOT_FOUND",
    "rate_limited": "RATE_LIMITED",
    "internal_error": "INTERNAL_ERROR",
    "provider_error": "INTERNAL_ERROR",
    "unavailable": "INTERNAL_ERROR",
}


def spec_envelope(code: str, message: str) -> dict[str, Any]:
    """The daemon's error code in this surface's envelope and codes."""
    spec = _SPEC_CODES.get(code, "INVALID_REQUEST")
    return {"success": False, "error": {"message": message, "code": spec, "details": {}}}


SURFACE = Surface(
    "research-sessions",
    ErrorEnvelope,
    "The research-sessions API: {success, data} / {success: false, error: {message, code, "
    "details}} with INVALID_REQUEST, AUTHENTICATION_REQUIRED, ACCESS_DENIED, SESSION_NOT_FOUND, "
    "RATE_LIMITED, INTERNAL_ERROR (and NOT_FOUND for an unknown path, METHOD_NOT_ALLOWED for "
    "a method a path does not take).",
    spec_envelope,
    omitted_statuses=("409", "502"),
    plain_text_body=True,
)


class Settings(CamelModel, forbid_unknown_fields=True):
    provider: Annotated[str, msgspec.Meta(max_length=64)] | UnsetType = UNSET
    thinking_model: Annotated[str, msgspec.Meta(max_length=200)] | UnsetType = UNSET
    task_model: Annotated[str, msgspec.Meta(max_length=200)] | UnsetType = UNSET
    search_provider: Annotated[str, msgspec.Meta(max_length=64)] | UnsetType = UNSET
    language: Annotated[str, msgspec.Meta(max_length=16)] | UnsetType = UNSET
    max_results: Annotated[int, msgspec.Meta(ge=1, le=50)] | UnsetType = UNSET
    enable_references: bool | UnsetType = UNSET
    enable_citation_image: bool | UnsetType = UNSET


class CreateSession(CamelModel):
    settings: Settings | None = None


class SubmitTopic(CamelModel):
    topic: str


class SubmitFeedback(CamelModel):
    feedback: str


class Refine(CamelModel):
    refinement: str
    phase: str | None = None


class SessionCreated(CamelModel):
    session_id: str
    phase: str
    message: str
    expires_at: str
    # Set when settings.language cannot be applied (the builtin engine does not translate).
    language_note: str | UnsetType = UNSET


class SessionSummary(CamelModel):
    id: str
    phase: str
    topic: str
    created_at: str
    updated_at: str
    expires_at: str


class SessionDetail(CamelModel):
    id: str
    phase: str
    topic: str
    questions: str
    feedback: str
    report_plan: str
    final_report: str
    progress: int
    settings: dict[str, Any]
    created_at: str
    updated_at: str
    expires_at: str
    error: str | UnsetType = UNSET
    # The language questions, plan and report are written in: settings.language with a model,
    # "notes" (the notes' own) on the builtin engine, which then says why in languageNote.
    report_language: str | UnsetType = UNSET
    language_note: str | UnsetType = UNSET


class Message(CamelModel):
    message: str


class Questions(CamelModel):
    session_id: str
    questions: str
    phase: str


class PhaseMessage(CamelModel):
    session_id: str
    phase: str
    message: str


class TaskModel(CamelModel):
    query: str
    focus: str


class Plan(CamelModel):
    session_id: str
    report_plan: str
    tasks: list[TaskModel]
    phase: str


class SourceModel(CamelModel):
    title: str
    url: str
    content: str


class TaskResult(CamelModel):
    query: str
    sources: list[SourceModel]


class Executed(CamelModel):
    session_id: str
    final_report: str
    results: list[TaskResult]
    phase: str
    error: str | UnsetType = UNSET


class Results(CamelModel):
    session_id: str
    phase: str
    results: list[TaskResult]
    progress: int


class Extended(CamelModel):
    session_id: str
    expires_at: str
    message: str


class EditPlan(CamelModel):
    tasks: list[TaskModel]


class LegacyQuery(CamelModel):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


def _ok(name: str, data: Any) -> type[Model]:
    """{"success": true, "data": <data>} as a named model (for the OpenAPI document)."""
    model: type[Model] = msgspec.defstruct(  # type: ignore[assignment]
        name, [("success", bool), ("data", data)], bases=(Model,), kw_only=True
    )
    return model


CreatedOk = _ok("SessionCreatedOk", SessionCreated)
ListOk = _ok("SessionListOk", list[SessionSummary])
DetailOk = _ok("SessionDetailOk", SessionDetail)
MessageOk = _ok("SessionMessageOk", Message)
QuestionsOk = _ok("QuestionsOk", Questions)
PhaseOk = _ok("PhaseMessageOk", PhaseMessage)
PlanOk = _ok("PlanOk", Plan)
ExecutedOk = _ok("ExecutedOk", Executed)
ResultsOk = _ok("ResultsOk", Results)
ExtendedOk = _ok("ExtendedOk", Extended)


def _operations() -> list[Operation]:
    s = SURFACE
    sse = {"text/event-stream": "Server-Sent Events: event: connected | progress | "
           "final-report | error, id: N, data: JSON"}  # fmt: skip
    p = PREFIX
    i = f"{PREFIX}/{{sessionId}}"
    return [
        Operation("POST", p, "Create a research session", "research", body=CreateSession,
                  body_required=False, response=CreatedOk, status=201,
                  rate_class="sessions:create", surface=s, tag="research-sessions"),
        Operation("GET", p, "The caller's sessions", "research", response=ListOk,
                  rate_class="sessions:get", surface=s, tag="research-sessions"),
        Operation("GET", i, "A session", "research", response=DetailOk,
                  rate_class="sessions:get", surface=s, tag="research-sessions"),
        Operation("DELETE", i, "Delete a session", "research", response=MessageOk,
                  rate_class="other", surface=s, tag="research-sessions"),
        Operation("POST", f"{i}/questions", "Submit the topic, get clarifying questions",
                  "research", body=SubmitTopic, response=QuestionsOk, rate_class="other",
                  surface=s, tag="research-sessions"),
        Operation("POST", f"{i}/feedback", "Answer the questions", "research",
                  body=SubmitFeedback, response=PhaseOk, rate_class="other", surface=s,
                  tag="research-sessions"),
        Operation("POST", f"{i}/plan", "Write the research plan", "research",
                  response=PlanOk, rate_class="other", surface=s, tag="research-sessions"),
        Operation("PUT", f"{i}/plan", "Replace the plan's tasks", "research", body=EditPlan,
                  response=PlanOk, rate_class="other", surface=s, tag="research-sessions"),
        Operation("POST", f"{i}/execute", "Run the plan and write the report", "research",
                  response=ExecutedOk, rate_class="sessions:execute", surface=s,
                  tag="research-sessions"),
        Operation("GET", f"{i}/results", "Results so far and progress", "research",
                  response=ResultsOk, rate_class="sessions:get", surface=s,
                  tag="research-sessions"),
        Operation("POST", f"{i}/refine", "Redo a step, or research a follow-up", "research",
                  body=Refine, response=PhaseOk, rate_class="other", surface=s,
                  tag="research-sessions"),
        Operation("POST", f"{i}/extend", "Push the session's expiry", "research",
                  response=ExtendedOk, rate_class="other", surface=s,
                  tag="research-sessions"),
        Operation("GET", f"{i}/stream", "The session's events (Server-Sent Events)",
                  "research", content=sse, rate_class="other", surface=s,
                  tag="research-sessions"),
        Operation("POST", "/api/sse", "Legacy: a whole flow from one query, streamed",
                  "research", body=LegacyQuery, content=sse, rate_class="sessions:create",
                  surface=s, tag="research-sessions"),
        Operation("POST", "/api/test/mock-paris-flow", "A complete flow on a fixed topic",
                  "research", response=DetailOk, rate_class="sessions:create", surface=s,
                  tag="research-sessions"),
    ]  # fmt: skip


register(*_operations())
