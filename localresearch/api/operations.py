"""Every operation the daemon serves: path, models, permission and rate class, in one table.

The OpenAPI document, the /docs page and the access layer's permission checks are all read
from this table, so a route that is not listed here is refused by a test.

A new surface (its own paths, envelope and auth rules) adds its models in a module of this
package, a `Surface` with its error envelope, and its operations to `OPERATIONS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localresearch.access.roles import PERMISSIONS
from localresearch.api import access, chat, heartbeat, memory, research, status
from localresearch.api.base import Model

__all__ = [
    "OPERATIONS",
    "PERMISSIONS",
    "Operation",
    "Surface",
    "all_operations",
    "by_key",
    "register",
]

# The surfaces that add their operations at import; whoever reads the whole table imports them
# first, so it never depends on which route modules happen to be loaded yet.
SURFACE_MODULES = ("localresearch.api.query", "localresearch.api.sessions_api")


class Error(Model):
    code: str
    message: str


class ErrorEnvelope(Model):
    """The daemon's error envelope: {"error": {"code", "message"}}."""

    error: Error


def daemon_envelope(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


@dataclass(frozen=True)
class Surface:
    """A family of paths that share an error envelope (the daemon's, or a compatible API's):
    `error` is its schema in /openapi.json, `envelope(code, message)` builds one."""

    name: str
    error: type[Model]
    description: str
    envelope: Callable[[str, str], dict[str, Any]] = daemon_envelope
    # Error statuses of the common set this surface never answers with (its spec lacks them).
    omitted_statuses: tuple[str, ...] = ()
    # Bodies are also read from text/plain holding the JSON (what a browser's fetch sends).
    plain_text_body: bool = False


DAEMON = Surface("daemon", ErrorEnvelope, "The daemon's own API and the LocalGPT/jobs specs.")


@dataclass(frozen=True)
class Operation:
    """One endpoint as the contract knows it: routes, OpenAPI and permissions read it."""

    method: str
    path: str
    summary: str
    permission: str
    body: type[Model] | None = None
    body_required: bool = True
    query: type[Model] | None = None
    response: type[Model] | None = None
    status: int = 200
    # Other content types the operation answers with, e.g. {"text/event-stream": "events"}.
    content: dict[str, str] = field(default_factory=dict)
    # The per-key hourly limit class (api.rate_limits), if the surface has one.
    rate_class: str | None = None
    surface: Surface = DAEMON
    tag: str = "daemon"
    public: bool = False  # answered without credentials (/health, the page's own files)

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)


def _ops() -> list[Operation]:
    ev = {"text/event-stream": "Server-Sent Events: id: N and data: {type, data, timestamp}"}
    page = {"text/html": "the page, its script, style or image"}
    return [
        Operation("GET", "/health", "Is the server up", "health", response=status.Health,
                  tag="status", public=True),
        Operation("GET", "/api/status", "Version, uptime, model, memory and heartbeat", "health",
                  response=status.Status, tag="status"),
        Operation("GET", "/api/models", "Providers and the configured provider's models",
                  "capabilities", response=status.Models, tag="chat"),
        Operation("POST", "/api/chat", "One answer, as JSON", "chat", body=chat.ChatRequest,
                  response=chat.ChatResponse, tag="chat"),
        Operation("POST", "/api/chat/stream", "One answer, streamed as Server-Sent Events",
                  "chat", body=chat.ChatRequest, content=ev, tag="chat"),
        Operation("GET", "/api/ws", "Chat over a WebSocket (upgrade)", "chat", status=101,
                  tag="chat"),
        Operation("POST", "/api/sessions", "Create a session", "chat",
                  body=chat.CreateSession, body_required=False, response=chat.Session,
                  status=201, tag="sessions"),
        Operation("GET", "/api/sessions", "Sessions, most recently used first", "chat",
                  query=chat.Page, response=chat.SessionList, tag="sessions"),
        Operation("GET", "/api/sessions/{id}", "A session with its messages", "chat",
                  response=chat.SessionWithMessages, tag="sessions"),
        Operation("DELETE", "/api/sessions/{id}", "Delete a session", "chat",
                  response=chat.SessionDeleted, tag="sessions"),
        Operation("GET", "/api/memory/search", "Search the notes", "memory",
                  query=memory.SearchQuery, response=memory.SearchResults, tag="memory"),
        Operation("POST", "/api/memory/search", "Search the notes (the query in the body)",
                  "memory", body=memory.SearchBody, response=memory.SearchResults,
                  tag="memory"),
        Operation("GET", "/api/memory/stats", "Index statistics", "memory",
                  response=memory.MemoryStats, tag="memory"),
        Operation("POST", "/api/memory/reindex", "Bring the index up to date", "memory",
                  body=memory.Reindex, body_required=False, response=memory.ReindexReport,
                  content=ev, tag="memory"),
        Operation("GET", "/api/memory/sources", "Indexed folders", "memory",
                  response=memory.SourceList, tag="memory"),
        Operation("POST", "/api/memory/sources", "Add a folder to the index", "memory",
                  body=memory.AddSource, response=memory.Source, status=201, tag="memory"),
        Operation("DELETE", "/api/memory/sources", "Remove an added folder", "memory",
                  query=memory.RemoveSource, body=memory.RemoveSource, body_required=False,
                  response=memory.SourceRemoved, tag="memory"),
        Operation("POST", "/api/research/deep", "Start a deep research job", "research",
                  body=research.StartJob, response=research.JobStarted, tag="research"),
        Operation("GET", "/api/research/deep", "Jobs, newest first", "research",
                  query=research.JobListQuery, response=research.JobList, tag="research"),
        Operation("GET", "/api/research/deep/{id}", "A job's events (Server-Sent Events)",
                  "research", content=ev, tag="research"),
        Operation("GET", "/api/research/deep/{id}/status", "A job's status snapshot",
                  "research", response=research.JobStatus, tag="research"),
        Operation("DELETE", "/api/research/deep/{id}", "Cancel a job", "research", status=204,
                  tag="research"),
        Operation("GET", "/api/research/deep/{id}/report", "A job's report", "research",
                  query=research.ReportQuery, response=research.ReportJSON,
                  content={"text/markdown": "the report", "text/html": "a standalone page"},
                  tag="research"),
        Operation("GET", "/api/heartbeat", "Heartbeat status", "heartbeat",
                  response=heartbeat.HeartbeatStatus, tag="heartbeat"),
        Operation("POST", "/api/heartbeat/run", "Run the due tasks now", "heartbeat",
                  response=heartbeat.HeartbeatResult, tag="heartbeat"),
        Operation("POST", "/api/heartbeat/pause", "Stop running on schedule", "heartbeat",
                  response=heartbeat.HeartbeatStatus, tag="heartbeat"),
        Operation("POST", "/api/heartbeat/resume", "Run on schedule again", "heartbeat",
                  response=heartbeat.HeartbeatStatus, tag="heartbeat"),
        Operation("GET", "/api/schedules", "Recurring tasks", "heartbeat",
                  response=heartbeat.ScheduleList, tag="heartbeat"),
        Operation("POST", "/api/schedules", "Add a recurring task", "heartbeat",
                  body=heartbeat.AddSchedule, response=heartbeat.Task, status=201,
                  tag="heartbeat"),
        Operation("DELETE", "/api/schedules/{id}", "Remove a pending task", "heartbeat",
                  status=204, tag="heartbeat"),
        Operation("POST", "/api/keys", "Create an API key (its secret is in this answer only)",
                  "admin", body=access.CreateKey, response=access.KeyCreated, status=201,
                  tag="access"),
        Operation("GET", "/api/keys", "API keys (without secrets)", "admin",
                  query=access.KeyListQuery, response=access.KeyList, tag="access"),
        Operation("DELETE", "/api/keys/{id}", "Revoke an API key", "admin",
                  response=access.KeyInfo, tag="access"),
        Operation("GET", "/api/memory/file", "A cited file's lines (only under a source)",
                  "memory", query=memory.FileQuery, response=memory.FileLines, tag="memory"),
        Operation("GET", "/", "The page", "health", content=page, tag="page", public=True),
        Operation("GET", "/static/{name}", "A file of the page", "health", content=page,
                  tag="page", public=True),
        Operation("GET", "/static/{version}/{name}", "A file of the page (kept by browsers)",
                  "health", content=page, tag="page", public=True),
        Operation("POST", "/api/web/token", "A one-time sign-in link for the page", "admin",
                  response=access.SigninLink, status=201, tag="page"),
        Operation("GET", "/web/signin", "Exchange a sign-in link for the page's cookie",
                  "health", status=303, tag="page", public=True),
        Operation("GET", "/openapi.json", "This document (OpenAPI 3.1)", "docs", tag="docs"),
        Operation("GET", "/docs", "This document as a page", "docs",
                  content={"text/html": "the API reference"}, tag="docs"),
    ]  # fmt: skip


OPERATIONS: list[Operation] = _ops()
# More operations (another surface) are appended by their modules at import: read the whole
# table through `all_operations`.


def register(*operations: Operation) -> None:
    """Add a surface's operations to the table (idempotent per method and path)."""
    known = {op.key for op in OPERATIONS}
    OPERATIONS.extend(op for op in operations if op.key not in known)


def all_operations() -> list[Operation]:
    """The table with every surface's operations, however far the route modules have loaded."""
    for module in SURFACE_MODULES:
        importlib.import_module(module)
    return OPERATIONS


def by_key() -> dict[tuple[str, str], Operation]:
    return {op.key: op for op in all_operations()}
