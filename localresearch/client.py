"""The one client of the daemon's HTTP API: used by the CLI, and a public Python API for scripts.

from localresearch.client import Client
client = Client.from_environment()  # sends the home's local credential (or api.key_env's key)
print(client.status().version)
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from localresearch.events import Event

if TYPE_CHECKING:
    from localresearch.api.access import KeyCreated, KeyInfo, KeyList, SigninLink
    from localresearch.api.chat import (
        ChatResponse,
        Session,
        SessionDeleted,
        SessionList,
        SessionWithMessages,
    )
    from localresearch.api.heartbeat import HeartbeatResult, HeartbeatStatus, Task
    from localresearch.api.memory import (
        MemoryStats,
        ReindexReport,
        SearchResults,
        Source,
        SourceRemoved,
    )
    from localresearch.api.query import ConfigView, QueryPartial, QueryResponse, QueryStreamError
    from localresearch.api.research import JobList, JobStarted, JobStatus
    from localresearch.api.sessions_api import (
        Executed,
        Plan,
        Questions,
        SessionCreated,
        SessionDetail,
        SessionSummary,
    )
    from localresearch.api.status import Models, Status

T = TypeVar("T")

# How long `probe` waits for the first answer: /health is answered before the daemon imports
# anything else, so only a program that is not the daemon (or a machine at a standstill) is
# slower.
PROBE_TIMEOUT = 3.0


def _typed(data: Any, model: type[T]) -> T:
    """A decoded answer as the contract's model (unknown fields are ignored, so a newer daemon
    that adds fields still works)."""
    import msgspec

    return msgspec.convert(data, model)


class ClientError(Exception):
    """Base of the errors this client raises."""


class DaemonNotRunning(ClientError):
    """Nothing answers at the daemon's address."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"The localresearch daemon is not running at {url}. "
            "Start it with: research daemon start"
        )
        self.url = url


class PortHeld(DaemonNotRunning):
    """Another program holds the daemon's port: it answers /health with something else, or
    not at all (so no daemon of ours can run there)."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(url)
        self.args = (message,)


class DaemonStopped(ClientError):
    """The daemon went away in the middle of an answer (it stopped, or was killed)."""

    def __init__(self) -> None:
        super().__init__(
            "the daemon stopped before the answer was complete; see `research daemon logs`, "
            "then try again"
        )


class APIRequestError(ClientError):
    """The daemon answered with the error envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message


class Client:
    """Blocking HTTP client (stdlib only, so the CLI starts fast); one connection is kept alive
    between requests, so a long-lived client pays the connect once (`close()` releases it)."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, api_key: str | None = None) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self.api_key = api_key
        # One idle keep-alive connection, reused by the next request of this process.
        self._idle: tuple[int, http.client.HTTPConnection] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the idle keep-alive connection (the next request opens a new one)."""
        with self._lock:
            idle, self._idle = self._idle, None
        if idle is not None:
            idle[1].close()

    def __del__(self) -> None:
        idle = getattr(self, "_idle", None)
        if idle is not None and idle[0] == os.getpid():
            idle[1].close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def from_environment(cls, *, timeout: float = 30.0) -> Client:
        """The daemon of this installation (config file + LOCALRESEARCH_* environment)."""
        from localresearch.daemon.locate import api_key, daemon_url

        return cls(daemon_url(), timeout=timeout, api_key=api_key())

    # -- transport -------------------------------------------------------------------------

    def _connection(
        self, timeout: float | None, *, reuse: bool = True
    ) -> tuple[http.client.HTTPConnection, bool]:
        """The idle keep-alive connection if it is still open, else a new one; and whether it
        was reused."""
        idle = None
        if reuse:
            with self._lock:
                idle, self._idle = self._idle, None
        if idle is not None:
            pid, conn = idle
            if pid == os.getpid() and conn.sock is not None and not _dropped(conn.sock):
                conn.timeout = timeout
                conn.sock.settimeout(timeout)
                return conn, True
            if pid == os.getpid():
                conn.close()
        return _Connection(self.host, self.port, timeout=timeout), False

    def _release(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> None:
        """Keep the connection for the next request if its response was read to the end and
        the daemon keeps it open; otherwise close it."""
        if conn.sock is None or response.will_close or not response.isclosed():
            conn.close()
            return
        with self._lock:
            idle, self._idle = self._idle, (os.getpid(), conn)
        if idle is not None:
            idle[1].close()

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "localresearch-client"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if extra:
            headers.update(extra)
        return headers

    def _open(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = -1.0,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        if params:
            clean = {k: v for k, v in params.items() if v is not None}
            path = f"{path}?{urlencode(clean, doseq=True)}"
        body = None
        hdrs = self._headers(headers)
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        timeout = self.timeout if timeout == -1.0 else timeout
        idempotent = method in _IDEMPOTENT
        reuse = True
        while True:
            conn, reused = self._connection(timeout, reuse=reuse)
            sent = False
            try:
                conn.request(method, path, body=body, headers=hdrs)
                sent = True
                return conn, conn.getresponse()
            except (ConnectionRefusedError, socket.gaierror, FileNotFoundError) as exc:
                conn.close()
                raise DaemonNotRunning(self.base_url) from exc
            except OSError as exc:
                conn.close()
                # A kept-alive connection the daemon closed meanwhile (a restart, its idle
                # timeout): try once more on a new one, unless the request may have been
                # received (then only if repeating it is harmless).
                if reused and isinstance(exc, ConnectionError) and (not sent or idempotent):
                    reuse = False
                    continue
                if isinstance(exc, ConnectionError):
                    raise DaemonNotRunning(self.base_url) from exc
                raise
            except http.client.HTTPException:
                conn.close()
                raise

    @staticmethod
    def _raise_for(response: http.client.HTTPResponse, raw: bytes) -> None:
        if response.status < 400:
            return
        try:
            error = json.loads(raw)["error"]
            raise APIRequestError(response.status, str(error["code"]), str(error["message"]))
        except (ValueError, KeyError, TypeError):
            text = raw.decode(errors="replace").strip()[:300]
            raise APIRequestError(response.status, "http_error", text or response.reason) from None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        timeout: float | None = -1.0,
    ) -> Any:
        """One JSON request; returns the decoded body (None for 204)."""
        conn, response = self._open(method, path, params=params, json_body=json, timeout=timeout)
        try:
            raw = response.read()
        except (http.client.HTTPException, ConnectionError):
            conn.close()
            raise DaemonStopped() from None
        except BaseException:
            conn.close()
            raise
        self._release(conn, response)
        self._raise_for(response, raw)
        if response.status == 204 or not raw:
            return None
        return _json_loads(raw)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, *, timeout: float | None = -1.0) -> Any:
        return self.request("POST", path, json=json if json is not None else {}, timeout=timeout)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def stream(
        self,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Iterator[Event]:
        """Server-Sent Events as Event objects (ids kept, keep-alive comments skipped)."""
        hdrs = {"Accept": "text/event-stream"}
        hdrs.update(headers or {})
        conn, response = self._open(
            method, path, params=params, json_body=json, headers=hdrs, timeout=None
        )
        complete = False
        try:
            if response.status >= 400:
                raw = response.read()
                complete = True
                self._raise_for(response, raw)
            yield from parse_sse(_lines(response))
            complete = True
        finally:
            if complete:
                self._release(conn, response)
            else:  # the caller stopped early: the rest of the stream is not wanted
                conn.close()

    # -- status ----------------------------------------------------------------------------

    def health(self) -> bool:
        """True if the localresearch daemon answers at this address (within `timeout`)."""
        return self.probe(self.timeout) == "daemon"

    def probe(self, timeout: float = PROBE_TIMEOUT) -> str:
        """Who answers at the daemon's address: "daemon" (GET /health answers as the daemon
        does), "none" (nothing listens) or "other" (another program: an answer that is not the
        daemon's, or none within `timeout` — a bound on the wait for the first answer, not on
        the requests that follow)."""
        try:
            conn, response = self._open("GET", "/health", timeout=timeout)
        except DaemonNotRunning:
            return "none"
        except (OSError, http.client.HTTPException):
            return "other"
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            return "other"
        self._release(conn, response)
        try:
            body = json.loads(raw)
        except ValueError:
            return "other"
        ours = response.status == 200 and isinstance(body, dict) and body.get("status") == "ok"
        return "daemon" if ours else "other"

    def status(self) -> Status:
        from localresearch.api.status import Status

        return _typed(self.get("/api/status"), Status)

    # --- memory ---

    def memory_search(
        self,
        query: str,
        limit: int = 10,
        *,
        kind: str | None = None,
        include_logs: bool = False,
        prefix: bool = False,
    ) -> SearchResults:
        """GET /api/memory/search: .query, .results (file, content, score, kind, ...), .total;
        notes only unless `kind` or `include_logs` asks for what the daemon wrote."""
        from localresearch.api.memory import SearchResults

        if len(query.encode()) > SEARCH_GET_BYTES:  # a URL that long is refused (414): POST it
            body: dict[str, Any] = {"query": query, "limit": limit}
            body.update(kind=kind, include_logs=include_logs, prefix=prefix)
            return _typed(self.post("/api/memory/search", body), SearchResults)
        params: dict[str, Any] = {"q": query, "limit": limit}
        if kind:
            params["kind"] = kind
        if include_logs:
            params["include_logs"] = "true"
        if prefix:
            params["prefix"] = "true"
        return _typed(self.get("/api/memory/search", params), SearchResults)

    def memory_stats(self) -> MemoryStats:
        from localresearch.api.memory import MemoryStats

        return _typed(self.get("/api/memory/stats"), MemoryStats)

    def memory_reindex(self, force: bool = False) -> ReindexReport:
        """Returns when the index is current, with files added/updated/removed/skipped."""
        from localresearch.api.memory import ReindexReport

        report = self.post("/api/memory/reindex", {"force": force}, timeout=None)
        return _typed(report, ReindexReport)

    def memory_reindex_stream(self, force: bool = False) -> Iterator[Event]:
        """The same, as `start`, `progress` ({files_done, files_total, file}) and `done` events."""
        return self.stream("POST", "/api/memory/reindex", json={"force": force})

    def memory_sources(self) -> list[Source]:
        from localresearch.api.memory import SourceList

        return _typed(self.get("/api/memory/sources"), SourceList).sources

    def memory_add_source(self, path: str, glob: str = "") -> Source:
        from localresearch.api.memory import Source

        return _typed(self.post("/api/memory/sources", {"path": path, "glob": glob}), Source)

    def memory_remove_source(self, path: str) -> SourceRemoved:
        from localresearch.api.memory import SourceRemoved

        params = {"path": path}
        removed = self.request("DELETE", "/api/memory/sources", params=params)
        return _typed(removed, SourceRemoved)

    # --- chat ---

    @staticmethod
    def _chat_body(
        message: str, session_id: str | None, model: str | None, include_memory: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"message": message, "include_memory": include_memory}
        if session_id:
            body["session_id"] = session_id
        if model:
            body["model"] = model
        return body

    def chat(
        self,
        message: str,
        *,
        session_id: str | None = None,
        model: str | None = None,
        include_memory: bool = True,
    ) -> ChatResponse:
        """One answer at once: .response, .model, .tokens, .tools_used, .citations, …."""
        from localresearch.api.chat import ChatResponse

        body = self._chat_body(message, session_id, model, include_memory)
        return _typed(self.post("/api/chat", body, timeout=None), ChatResponse)

    def chat_stream(
        self,
        message: str,
        *,
        session_id: str | None = None,
        model: str | None = None,
        include_memory: bool = True,
    ) -> Iterator[Event]:
        """The answer as events: start, delta{text}, tool_call, then done or error."""
        body = self._chat_body(message, session_id, model, include_memory)
        return self.stream("POST", "/api/chat/stream", json=body)

    def create_session(self, title: str = "") -> Session:
        from localresearch.api.chat import Session

        return _typed(self.post("/api/sessions", {"title": title} if title else {}), Session)

    def sessions(self, limit: int = 50, offset: int = 0) -> SessionList:
        from localresearch.api.chat import SessionList

        found = self.get("/api/sessions", {"limit": limit, "offset": offset})
        return _typed(found, SessionList)

    def session(self, session_id: str) -> SessionWithMessages:
        from localresearch.api.chat import SessionWithMessages

        found = self.get(f"/api/sessions/{quote(session_id, safe='')}")
        return _typed(found, SessionWithMessages)

    def delete_session(self, session_id: str) -> SessionDeleted:
        from localresearch.api.chat import SessionDeleted

        deleted = self.delete(f"/api/sessions/{quote(session_id, safe='')}")
        return _typed(deleted, SessionDeleted)

    def models(self) -> Models:
        from localresearch.api.status import Models

        return _typed(self.get("/api/models"), Models)

    def web_signin(self) -> SigninLink:
        """A one-time sign-in link for the browser page (`research web`)."""
        from localresearch.api.access import SigninLink

        return _typed(self.post("/api/web/token"), SigninLink)

    def websocket_url(self, path: str = "/api/ws") -> str:
        return f"ws://{self.host}:{self.port}{path}"

    # --- research ---

    def research_start(
        self,
        query: str,
        *,
        session_id: str | None = None,
        dimensions: int | None = None,
        rounds: int | None = None,
    ) -> JobStarted:
        """Start a deep research job; .research_id (wire: researchId), .status "started"."""
        from localresearch.api.research import JobStarted

        body: dict[str, Any] = {"query": query}
        extra = {"sessionId": session_id, "dimensions": dimensions, "rounds": rounds}
        body.update({key: value for key, value in extra.items() if value is not None})
        return _typed(self.post("/api/research/deep", body), JobStarted)

    def research_status(self, research_id: str) -> JobStatus:
        from localresearch.api.research import JobStatus

        return _typed(self.get(f"/api/research/deep/{research_id}/status"), JobStatus)

    def research_list(
        self, *, limit: int = 20, offset: int = 0, status: str | None = None
    ) -> JobList:
        from localresearch.api.research import JobList

        params = {"limit": limit, "offset": offset, "status": status}
        return _typed(self.get("/api/research/deep", params=params), JobList)

    def research_cancel(self, research_id: str) -> None:
        self.delete(f"/api/research/deep/{research_id}")

    def research_events(
        self, research_id: str, last_event_id: int | None = None
    ) -> Iterator[Event]:
        """The job's events from the start (or after `last_event_id`) until its `done` event."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id else None
        return self.stream("GET", f"/api/research/deep/{research_id}", headers=headers)

    def research_report(self, research_id: str, fmt: str = "md") -> str:
        """The report as Markdown, HTML or JSON text."""
        path = f"/api/research/deep/{research_id}/report"
        conn, response = self._open("GET", path, params={"format": fmt})
        try:
            raw = response.read()
        except BaseException:
            conn.close()
            raise
        self._release(conn, response)
        self._raise_for(response, raw)
        return raw.decode("utf-8")

    # --- research sessions (the research-sessions API: {"success", "data"} envelope) ---

    def _session_data(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        answer = self.request(method, f"/api/research/sessions{path}", json=body, **kw)
        return answer["data"]

    def research_session_create(self, settings: dict[str, Any] | None = None) -> SessionCreated:
        from localresearch.api.sessions_api import SessionCreated

        body = {"settings": settings} if settings else {}
        return _typed(self._session_data("POST", "", body), SessionCreated)

    def research_sessions(self) -> list[SessionSummary]:
        from localresearch.api.sessions_api import SessionSummary

        return _typed(self._session_data("GET", ""), list[SessionSummary])

    def research_session(self, session_id: str) -> SessionDetail:
        from localresearch.api.sessions_api import SessionDetail

        return _typed(self._session_data("GET", f"/{quote(session_id)}"), SessionDetail)

    def research_session_delete(self, session_id: str) -> None:
        self._session_data("DELETE", f"/{quote(session_id)}")

    def research_session_questions(self, session_id: str, topic: str) -> Questions:
        from localresearch.api.sessions_api import Questions

        data = self._session_data("POST", f"/{quote(session_id)}/questions", {"topic": topic})
        return _typed(data, Questions)

    def research_session_feedback(self, session_id: str, feedback: str) -> None:
        self._session_data("POST", f"/{quote(session_id)}/feedback", {"feedback": feedback})

    def research_session_plan(self, session_id: str) -> Plan:
        from localresearch.api.sessions_api import Plan

        return _typed(self._session_data("POST", f"/{quote(session_id)}/plan", {}), Plan)

    def research_session_refine(self, session_id: str, refinement: str, phase: str) -> None:
        body = {"refinement": refinement, "phase": phase}
        self._session_data("POST", f"/{quote(session_id)}/refine", body, timeout=None)

    def research_session_execute(self, session_id: str) -> Executed:
        from localresearch.api.sessions_api import Executed

        data = self._session_data("POST", f"/{quote(session_id)}/execute", {}, timeout=None)
        return _typed(data, Executed)

    def research_session_events(
        self, session_id: str, last_event_id: int | None = None
    ) -> Iterator[tuple[int | None, str, dict[str, Any]]]:
        """(id, event name, data) of the session's stream until its final report or error."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = str(last_event_id)
        path = f"/api/research/sessions/{quote(session_id)}/stream"
        conn, response = self._open("GET", path, headers=headers, timeout=None)
        try:
            if response.status >= 400:
                self._raise_for(response, response.read())
            event_id: int | None = None
            name = "message"
            data: list[str] = []
            for raw in _lines(response):
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line:
                    if data:
                        yield event_id, name, json.loads("\n".join(data))
                    event_id, name, data = None, "message", []
                elif line.startswith("id: ") and line[4:].isdigit():
                    event_id = int(line[4:])
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
        finally:
            conn.close()

    # --- heartbeat ---

    def heartbeat_status(self) -> HeartbeatStatus:
        """Enabled/paused, last and next run, last result, pending and malformed entries."""
        from localresearch.api.heartbeat import HeartbeatStatus

        return _typed(self.get("/api/heartbeat"), HeartbeatStatus)

    def heartbeat_run(self, *, timeout: float | None = None) -> HeartbeatResult:
        """Run the due tasks now and return the heartbeat's result (waits for it)."""
        from localresearch.api.heartbeat import HeartbeatResult

        return _typed(self.post("/api/heartbeat/run", timeout=timeout), HeartbeatResult)

    def heartbeat_pause(self) -> HeartbeatStatus:
        from localresearch.api.heartbeat import HeartbeatStatus

        return _typed(self.post("/api/heartbeat/pause"), HeartbeatStatus)

    def heartbeat_resume(self) -> HeartbeatStatus:
        from localresearch.api.heartbeat import HeartbeatStatus

        return _typed(self.post("/api/heartbeat/resume"), HeartbeatStatus)

    def schedules(self) -> list[Task]:
        """The recurring tasks of HEARTBEAT.md, with their next due time."""
        from localresearch.api.heartbeat import Task

        return [_typed(item, Task) for item in self.get("/api/schedules")["schedules"]]

    def add_schedule(
        self, every: str, question: str, *, kind: str = "ask", priority: str | None = None
    ) -> Task:
        """Add a recurring task to HEARTBEAT.md, e.g. every="every 1d at 08:00"."""
        from localresearch.api.heartbeat import Task

        body: dict[str, Any] = {"every": every, "question": question, "kind": kind}
        if priority:
            body["priority"] = priority
        return _typed(self.post("/api/schedules", body), Task)

    # --- keys (admin) ---

    def keys_create(self, role: str, *, name: str = "", prefix: str = "lr_") -> KeyCreated:
        """A new API key; its secret (.key) is in this answer only."""
        from localresearch.api.access import KeyCreated

        body = {"role": role, "name": name or None, "prefix": prefix or None}
        return _typed(self.post("/api/keys", body), KeyCreated)

    def keys_list(self, *, revoked: bool = False) -> KeyList:
        from localresearch.api.access import KeyList

        params = {"revoked": "true"} if revoked else None
        return _typed(self.get("/api/keys", params), KeyList)

    def keys_revoke(self, key_id: str) -> KeyInfo:
        from localresearch.api.access import KeyInfo

        return _typed(self.delete(f"/api/keys/{quote(key_id, safe='')}"), KeyInfo)

    def remove_schedule(self, schedule_id: str) -> None:
        from urllib.parse import quote

        self.delete(f"/api/schedules/{quote(schedule_id, safe='')}")

    # -- the query API -------------------------------------------------------------------------

    def _query_body(
        self, question: str, loops: int | None, dimensions: int | None, model: str | None
    ) -> Any:
        body: dict[str, Any] = {"version": "1", "query": question}
        if model is not None:
            body["model"] = model
        if loops is not None:
            body["loops"] = loops
        if dimensions is not None:
            body["dimensions"] = dimensions
        return body

    def query(
        self,
        question: str,
        *,
        loops: int | None = None,
        dimensions: int | None = None,
        model: str | None = None,
    ) -> QueryResponse:
        """POST /query: the answer, citations, reasoning steps and metrics."""
        from localresearch.api.query import QueryResponse

        body = self._query_body(question, loops, dimensions, model)
        return _typed(self.post("/query", body, timeout=None), QueryResponse)

    def query_stream(
        self,
        question: str,
        *,
        loops: int | None = None,
        dimensions: int | None = None,
        model: str | None = None,
    ) -> Iterator[QueryPartial | QueryResponse | QueryStreamError]:
        """POST /query/stream: each step's object, then the result (or an error object);
        keep-alive blank lines are skipped."""
        from localresearch.api.query import QueryPartial, QueryResponse, QueryStreamError

        body = self._query_body(question, loops, dimensions, model)
        conn, response = self._open(
            "POST", "/query/stream", json_body=body, headers={"Accept": "application/x-ndjson"},
            timeout=None,
        )  # fmt: skip
        complete = False
        try:
            if response.status >= 400:
                raw = response.read()
                complete = True
                self._raise_for(response, raw)
            for line in _lines(response):
                if line.strip():
                    item = json.loads(line)
                    if "error" in item:
                        yield _typed(item, QueryStreamError)
                    elif item.get("partial"):
                        yield _typed(item, QueryPartial)
                    else:
                        yield _typed(item, QueryResponse)
            complete = True
        finally:
            if complete:
                self._release(conn, response)
            else:
                conn.close()

    def config_get(self) -> dict[str, Any]:
        """GET /config: the daemon's effective configuration (credentials redacted)."""
        result: dict[str, Any] = self.get("/config")
        return result

    def config_update(self, values: dict[str, Any]) -> ConfigView:
        """PUT /config: change some settings; applied at once where they allow it (the
        answer's .restart_required and .overridden_by_environment say where not)."""
        from localresearch.api.query import ConfigView

        return _typed(self.request("PUT", "/config", json=values), ConfigView)


_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
SEARCH_GET_BYTES = 2000  # longer searches go as POST: URL-encoded they could pass 8,190 bytes


class _Connection(http.client.HTTPConnection):
    """Sends a request's headers and body in one write: one packet, so the daemon reads the
    whole request at once instead of waking again for the body."""

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if isinstance(message_body, bytes) and not encode_chunked:
            buffer: list[bytes] = self._buffer  # type: ignore[attr-defined]
            buffer.extend((b"", message_body))
            message = b"\r\n".join(buffer)
            del buffer[:]
            self.send(message)
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]


def _dropped(sock: socket.socket) -> bool:
    """An idle keep-alive socket that is readable has been closed by the daemon (or holds
    bytes nobody asked for): either way it cannot carry the next request."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _lines(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """The body's lines as they arrive, reading whatever the socket has at once (one call per
    packet instead of several per line)."""
    pending = b""
    while True:
        try:
            data = response.read1(65536)
        except (http.client.HTTPException, ConnectionError):  # cut mid-body: IncompleteRead
            raise DaemonStopped() from None
        if not data:
            if pending:
                yield pending
            return
        pending += data
        if b"\n" not in data:
            continue
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"


def _json_loads(raw: bytes) -> Any:
    return json.loads(raw)


def parse_sse(lines: Any) -> Iterator[Event]:
    """Parse an SSE byte stream (an iterable of lines) into Events."""
    data: list[str] = []
    event_id: int | None = None
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n") if isinstance(raw, bytes) else raw.rstrip("\r\n")
        if not line:
            if data:
                payload = json.loads("\n".join(data))
                yield Event.from_dict(payload, id=event_id)
            data, event_id = [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "id":
            try:
                event_id = int(value)
            except ValueError:
                event_id = None
    if data:
        yield Event.from_dict(json.loads("\n".join(data)), id=event_id)
