"""The research-sessions API as a client of specs/research-sessions-api.md sees it: plain HTTP
and SSE against a real daemon, nothing imported from the package. The spec's "Complete Research
Flow" and "Streaming Updates" examples, ownership, expiry, extend, every error code and the
per-key limits (with a test-sized window)."""

from __future__ import annotations

import contextlib
import http.client
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_fixture import DaemonHandle
from tests.fakes.search_scifact import scifact_available, write_corpus

pytestmark = pytest.mark.skipif(not scifact_available(), reason="SciFact not in ../shared")

API = "/api/research/sessions"
TOPIC = "vitamin D deficiency and the risk of bone fractures"


class Client:
    """The spec's SDK in Python: bearer key, JSON bodies, the envelope as the server sends it."""

    def __init__(self, port: int, key: str | None) -> None:
        self.port = port
        self.key = key

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = {"Content-Type": "application/json"}
        if self.key:
            sent["Authorization"] = f"Bearer {self.key}"
        sent.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        payload = json.loads(response.read() or b"{}")
        conn.close()
        return response.status, payload, dict(response.getheaders())

    def ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        status, payload, _ = self.request(method, path, body)
        assert status in (200, 201), (status, payload)
        assert payload["success"] is True
        data: dict[str, Any] = payload["data"]
        return data


def events(
    port: int, path: str, headers: dict[str, str], limit: float = 30.0
) -> Iterator[tuple[str | None, str, dict[str, Any]]]:
    """(id, event, data) of an SSE stream, until the server closes it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=limit)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    assert response.status == 200, response.read()
    assert response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    assert response.getheader("Cache-Control") == "no-cache, no-transform"
    assert response.getheader("Connection") == "keep-alive"
    event_id: str | None = None
    name = "message"
    data: list[str] = []
    try:
        for raw in response:
            line = raw.decode().rstrip("\n")
            if not line:
                if data:
                    yield event_id, name, json.loads("\n".join(data))
                event_id, name, data = None, "message", []
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
    finally:
        conn.close()


def _config(home: Path, corpus: Path, extra: str = "") -> None:
    (home / "config.toml").write_text(
        f'[memory]\npaths = ["{corpus}"]\nwatch = false\n\n'
        "[heartbeat]\nenabled = false\n\n" + extra,
        encoding="utf-8",
    )


def _key(daemon: DaemonHandle, name: str) -> str:
    out = daemon.cli(
        "keys", "create", "--role", "user", "--name", name, "--prefix", "dr_", "--json"
    )
    assert out.returncode == 0, out.stderr
    secret: str = json.loads(out.stdout)["key"]
    return secret


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    dest = tmp_path / "corpus"
    write_corpus(dest, extra=80, queries=20)
    return dest


@pytest.fixture
def served(daemon_env: DaemonHandle, corpus: Path) -> Iterator[DaemonHandle]:
    _config(daemon_env.home, corpus)
    daemon_env.start()
    try:
        yield daemon_env
    finally:
        daemon_env.stop()


def test_complete_research_flow_and_streaming(served: DaemonHandle) -> None:
    key = _key(served, "alice")
    assert key.startswith("dr_") and len(key) == 35
    client = Client(served.port, key)
    # 1. Create session (settings mapped onto this daemon: the builtin engine, notes only)
    created = client.ok("POST", API, {"settings": {"provider": "builtin", "searchProvider": "none",
                                                   "language": "en", "maxResults": 5,
                                                   "enableReferences": True,
                                                   "enableCitationImage": True}})  # fmt: skip
    session_id = created["sessionId"]
    assert created["phase"] == "topic" and created["message"] == "Session created successfully"
    # A subscriber from the start sees every step, as the spec's Streaming Updates example.
    seen: list[tuple[str | None, str, dict[str, Any]]] = []
    auth = {"Authorization": f"Bearer {key}"}

    def listen() -> None:
        seen.extend(events(served.port, f"{API}/{session_id}/stream", auth))

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.3)
    # 2. Submit topic
    asked = client.ok("POST", f"{API}/{session_id}/questions", {"topic": TOPIC})
    assert asked["phase"] == "questions" and asked["sessionId"] == session_id
    lines = asked["questions"].splitlines()
    assert 3 <= len(lines) <= 5 and lines[0].startswith("1. ")
    assert all("vitamin D" in line for line in lines)
    # 3. Provide feedback
    answer = "Focus on elderly women and randomized trials; exclude children"
    fed = client.ok("POST", f"{API}/{session_id}/feedback", {"feedback": answer})
    assert fed == {"sessionId": session_id, "phase": "feedback",
                   "message": "Feedback processed successfully"}  # fmt: skip
    # 4. Generate plan
    plan = client.ok("POST", f"{API}/{session_id}/plan")
    assert plan["phase"] == "planning" and plan["reportPlan"].startswith("# Research Plan")
    assert plan["tasks"] and all(t["query"] and t["focus"] for t in plan["tasks"])
    assert plan["tasks"][0]["focus"].lower().startswith("elderly women")
    assert "children" not in " ".join(t["query"].lower() for t in plan["tasks"])
    # 5. Execute research
    result = client.ok("POST", f"{API}/{session_id}/execute")
    assert result["phase"] == "completed"
    assert result["finalReport"].startswith("# ") and "[1]" in result["finalReport"]
    assert [r["query"] for r in result["results"]] == [t["query"] for t in plan["tasks"]]
    source = result["results"][0]["sources"][0]
    assert set(source) == {"title", "url", "content"} and source["content"]
    listener.join(30)
    names = [name for _id, name, _data in seen]
    assert names[0] == "connected" and names[-1] == "final-report"
    progress = [d for _id, n, d in seen if n == "progress"]
    executing = [p["progress"] for p in progress if p["phase"] == "executing"]
    assert executing == sorted(executing) and 0 < max(executing) < 100
    final = seen[-1][2]
    assert final["finalReport"] == result["finalReport"] and final["phase"] == "completed"
    assert all(set(d) == {"phase", "progress", "message", "timestamp"} for d in progress)
    ids = [int(i) for i, _n, _d in seen if i is not None]
    assert ids == list(range(1, len(ids) + 1))
    # Resume: after the third event, exactly the rest.
    rest = list(events(served.port, f"{API}/{session_id}/stream",
                       {**auth, "Last-Event-ID": "3"}))  # fmt: skip
    assert [i for i, _n, _d in rest if i] == [str(i) for i in ids[3:]]
    # EventSource cannot send headers: the key as a query parameter, or a cookie.
    by_query = list(events(served.port, f"{API}/{session_id}/stream?api_key={key}", {}))
    assert by_query[-1][1] == "final-report"
    by_cookie = list(events(served.port, f"{API}/{session_id}/stream",
                            {"Cookie": f"dr_api_key={key}"}))  # fmt: skip
    assert by_cookie[-1][1] == "final-report"
    # Results, details, list
    got = client.ok("GET", f"{API}/{session_id}/results")
    assert got["progress"] == 100 and got["phase"] == "completed"
    detail = client.ok("GET", f"{API}/{session_id}")
    assert detail["topic"] == TOPIC and detail["finalReport"] == result["finalReport"]
    assert detail["feedback"].startswith("Focus on elderly") and detail["questions"]
    listed = client.ok("GET", API)
    assert [s["id"] for s in listed] == [session_id]
    # Refine a finished session: follow-up research revises the report.
    follow_up = {"refinement": "Also cover calcium supplements and hip fractures"}
    refined = client.ok("POST", f"{API}/{session_id}/refine", follow_up)
    assert refined["phase"] == "completed"
    after = client.ok("GET", f"{API}/{session_id}")
    assert after["finalReport"] != result["finalReport"]
    assert len(client.ok("GET", f"{API}/{session_id}/results")["results"]) > len(plan["tasks"])
    # Delete
    assert client.ok("DELETE", f"{API}/{session_id}") == {"message": "Session deleted successfully"}
    status, body, _ = client.request("GET", f"{API}/{session_id}")
    assert status == 404 and body["error"]["code"] == "SESSION_NOT_FOUND"


def _error(
    client: Client, method: str, path: str, body: Any = None, **kw: Any
) -> tuple[int, dict[str, Any]]:
    status, payload, _ = client.request(method, path, body, **kw)
    assert payload["success"] is False
    assert set(payload["error"]) == {"message", "code", "details"}
    assert payload["error"]["message"]
    return status, payload["error"]


def test_ownership_phases_and_error_codes(served: DaemonHandle) -> None:
    alice = Client(served.port, _key(served, "alice"))
    bob = Client(served.port, _key(served, "bob"))
    local = Client(served.port, None)  # the daemon's own user: the local admin
    session_id = alice.ok("POST", API)["sessionId"]
    # Another key: 403 ACCESS_DENIED on every call; its list does not show the session.
    for method, path in [("GET", ""), ("GET", "/results"), ("POST", "/extend"),
                         ("DELETE", ""), ("GET", "/stream")]:  # fmt: skip
        status, error = _error(bob, method, f"{API}/{session_id}{path}")
        assert (status, error["code"]) == (403, "ACCESS_DENIED")
    assert bob.ok("GET", API) == []
    # The local admin sees all.
    assert session_id in [s["id"] for s in local.ok("GET", API)]
    assert local.ok("GET", f"{API}/{session_id}")["id"] == session_id
    # Out of order: 400 naming the expected phase; nothing changed.
    for step in ("feedback", "plan", "execute"):
        body = {"feedback": "x"} if step == "feedback" else None
        status, error = _error(alice, "POST", f"{API}/{session_id}/{step}", body)
        assert status == 400 and error["code"] == "INVALID_REQUEST"
        assert error["details"]["phase"] == "topic" and error["details"]["expectedPhase"]
    assert alice.ok("GET", f"{API}/{session_id}")["phase"] == "topic"
    # 401: no key (keys exist, but a key-less caller that is not the owner's user gets 401;
    # here a wrong key stands in for it).
    status, error = _error(Client(served.port, "dr_" + "x" * 32), "GET", API)
    assert (status, error["code"]) == (401, "AUTHENTICATION_REQUIRED")
    # 404
    status, error = _error(alice, "GET", f"{API}/no-such-session")
    assert (status, error["code"]) == (404, "SESSION_NOT_FOUND")
    # 400: unknown settings, unknown provider and model (naming the field and the choices)
    status, error = _error(alice, "POST", API, {"settings": {"colour": "blue"}})
    assert status == 400 and error["details"]["field"] == "settings.colour"
    status, error = _error(alice, "POST", API, {"settings": {"provider": "skynet"}})
    assert status == 400 and error["details"]["field"] == "settings.provider"
    assert "builtin" in error["details"]["choices"]
    status, error = _error(alice, "POST", API, {"settings": {"thinkingModel": "gpt-9"}})
    assert status == 400 and error["details"]["field"] == "settings.thinkingModel"
    status, error = _error(alice, "POST", API, {"settings": {"searchProvider": "tavily"}})
    assert status == 400 and error["details"]["field"] == "settings.searchProvider"
    # 400: bad bodies; nothing half-written (the phase did not move)
    for raw in (b"{not json", b'{"topic": "a\\u0000b"}', b'{"topic": 5}', b'{"topic": ""}'):
        status, error = _error(alice, "POST", f"{API}/{session_id}/questions", raw=raw)
        assert (status, error["code"]) == (400, "INVALID_REQUEST"), raw
    huge = {"topic": "x" * (1024 * 1024)}
    status, error = _error(alice, "POST", f"{API}/{session_id}/questions", huge)
    assert status == 413 and error["code"] == "INVALID_REQUEST"
    assert alice.ok("GET", f"{API}/{session_id}")["phase"] == "topic"
    first = alice.ok("POST", f"{API}/{session_id}/questions", {"topic": TOPIC})["questions"]
    # Refine asks again with the refinement as guidance; a refine out of order is a 400.
    refine = {"phase": "questions", "refinement": "hip fractures in elderly women, calcium"}
    assert alice.ok("POST", f"{API}/{session_id}/refine", refine)["phase"] == "questions"
    assert alice.ok("GET", f"{API}/{session_id}")["questions"] != first
    status, error = _error(alice, "POST", f"{API}/{session_id}/refine",
                           {"phase": "completed", "refinement": "x"})  # fmt: skip
    assert status == 400 and error["details"]["expectedPhase"] == ["completed"]
    long_feedback = {"feedback": "more detail " * 5000}
    status, error = _error(alice, "POST", f"{API}/{session_id}/feedback", long_feedback)
    assert status == 400 and "feedback" in error["message"]
    assert alice.ok("GET", f"{API}/{session_id}")["phase"] == "questions"
    # Extend pushes expiresAt.
    before = alice.ok("GET", f"{API}/{session_id}")["expiresAt"]
    extended = alice.ok("POST", f"{API}/{session_id}/extend")
    assert extended["expiresAt"] > before
    assert alice.ok("GET", f"{API}/{session_id}")["expiresAt"] == extended["expiresAt"]
    # The daemon is healthy after all that.
    assert Client(served.port, None).request("GET", "/health")[0] == 200


def test_bad_input_in_every_phase(served: DaemonHandle) -> None:
    """Each phase refuses the calls out of its order, and bad bodies (wrong settings, 1 MB of
    feedback, NUL bytes anywhere) get a clear 4xx in the envelope; nothing moves or is stored."""
    alice = Client(served.port, _key(served, "alice"))
    database = served.home / "data" / "localresearch.db"

    def stored() -> int:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM research_sessions").fetchone()[0])

    def refused(method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                status: int = 400, code: str = "INVALID_REQUEST",
                client: Client = alice) -> dict[str, Any]:  # fmt: skip
        got, payload, _headers = client.request(method, path, body, raw=raw)
        assert payload["success"] is False, (path, payload)
        assert (got, payload["error"]["code"]) == (status, code), (path, payload)
        assert payload["error"]["message"] and isinstance(payload["error"]["details"], dict)
        return dict(payload["error"])

    # Settings: unknown names, wrong types, NUL bytes: 400 and no session stored (another
    # key's creates, as each counts towards its `sessions:create` limit).
    settler = Client(served.port, _key(served, "settings"))
    before = stored()
    for settings in ({"Provider": "builtin"}, {"maxResults": "ten"}, {"maxResults": 0},
                     {"language": 5}, {"language": "x" * 100}, {"enableReferences": "yes"},
                     {"provider": "buil\x00tin"}, {"thinkingModel": "a\x00b"},
                     {"language": "f\x00r"}):  # fmt: skip
        refused("POST", API, {"settings": settings}, client=settler)
    refused("POST", API, raw=b'{"settings": [1, 2]}', client=settler)
    assert stored() == before

    session = alice.ok("POST", API)["sessionId"]
    at = f"{API}/{session}"

    def phase() -> str:
        return str(alice.ok("GET", at)["phase"])

    # Each phase: every step that is not next (or a redo) is a 400 naming the phase it needs.
    wrong = {
        "topic": ["feedback", "plan", "execute"],
        "questions": ["plan", "execute"],
        "feedback": ["questions", "execute"],
        "planning": ["questions", "feedback"],
    }
    bodies = {"questions": {"topic": TOPIC}, "feedback": {"feedback": "Trials since 2010"}}
    steps = [("questions", "questions"), ("feedback", "feedback"), ("plan", "planning")]
    current = "topic"
    for step, reached in [*steps, (None, None)]:
        for call in wrong[current]:
            error = refused("POST", f"{at}/{call}", bodies.get(call))
            assert error["details"]["phase"] == current, (current, call, error)
            assert current not in error["details"]["expectedPhase"]
        assert phase() == current
        # NUL bytes and a megabyte of feedback, in this phase too: refused, nothing moved.
        for text in ("a\x00b", "\x00", "topic\x00" * 10):
            refused("POST", f"{at}/questions", {"topic": text})
            refused("POST", f"{at}/feedback", {"feedback": text})
            refused("POST", f"{at}/refine", {"refinement": text})
        megabyte = {"feedback": "more detail " * (1024 * 1024 // 12 + 1)}
        assert len(json.dumps(megabyte)) > 1024 * 1024
        refused("POST", f"{at}/feedback", megabyte, status=413)
        assert phase() == current
        if step is None:
            break
        alice.ok("POST", f"{at}/{step}", bodies.get(step))
        current = str(reached)
        assert phase() == current
    assert alice.ok("GET", at)["feedback"] == "Trials since 2010"  # not the refused ones

    # NUL in the path, the query string and Last-Event-ID: a 4xx in the envelope.
    for path in (f"{API}/ab%00cd", f"{at}/stream?lastEventId=%00"):
        got, payload, _headers = alice.request("GET", path)
        assert 400 <= got < 500 and payload["success"] is False, (path, payload)
    got, payload, _headers = alice.request(
        "GET", f"{at}/stream", headers={"Last-Event-ID": "1\x00"}
    )
    assert 400 <= got < 500, payload
    assert Client(served.port, None).request("GET", "/health")[0] == 200
    assert phase() == "planning"


def test_legacy_sse_and_mock_paris_flow(served: DaemonHandle) -> None:
    key = _key(served, "legacy")
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
    conn.request("POST", "/api/sse", body=json.dumps({"query": TOPIC}),
                 headers={"Authorization": f"Bearer {key}",
                          "Content-Type": "application/json"})  # fmt: skip
    response = conn.getresponse()
    assert response.status == 200
    text = response.read().decode()
    assert text.startswith("event: connected")
    assert "event: progress" in text and "event: final-report" in text
    conn.close()
    status, error = _error(Client(served.port, key), "POST", "/api/sse", {"query": ""})
    assert (status, error["code"]) == (400, "INVALID_REQUEST")
    paris = Client(served.port, key).ok("POST", "/api/test/mock-paris-flow")
    assert paris["phase"] == "completed" and "Paris" in paris["topic"]
    assert paris["questions"] and paris["reportPlan"] and paris["finalReport"]


@pytest.fixture
def short_lived(daemon_env: DaemonHandle, corpus: Path) -> Iterator[DaemonHandle]:
    _config(
        daemon_env.home,
        corpus,
        "[research]\nsession_ttl = 2\nsessions_per_key = 5\n\n[api]\nrate_window = 3\n"
        'rate_limits = {"sessions:create" = 3, "sessions:get" = 1000, '
        '"sessions:execute" = 50, "other" = 100}\n',
    )
    daemon_env.start()
    try:
        yield daemon_env
    finally:
        daemon_env.stop()


def test_expiry_and_rate_limits(short_lived: DaemonHandle) -> None:
    client = Client(short_lived.port, _key(short_lived, "hasty"))
    # Sessions by one key, far more than allowed: the window's limit, then 429.
    while time.time() % 3 > 1.5:  # start early in a window so all fit in one
        time.sleep(0.1)
    created: list[str] = []
    statuses = []
    for _ in range(50):
        status, payload, headers = client.request("POST", API)
        statuses.append(status)
        if status == 201:
            created.append(payload["data"]["sessionId"])
            assert int(headers["X-RateLimit-Limit"]) == 3
            assert int(headers["X-RateLimit-Remaining"]) == 3 - len(created)
            assert int(headers["X-RateLimit-Reset"]) > time.time()
        else:
            assert payload["error"]["code"] == "RATE_LIMITED"
            assert headers["X-RateLimit-Remaining"] == "0" and int(headers["Retry-After"]) >= 1
    assert statuses.count(201) == 3 and statuses.count(429) == 47
    # Other endpoint classes are counted apart (sessions:get still answers).
    assert client.ok("GET", f"{API}/{created[0]}")["id"] == created[0]
    # A new window admits again.
    time.sleep(3 - time.time() % 3 + 0.1)
    fresh = client.ok("POST", API)["sessionId"]
    # Expiry: gone after session_ttl unless extended, and purged from the database.
    client.ok("POST", f"{API}/{fresh}/extend")
    time.sleep(2.3)
    status, payload, _ = client.request("GET", f"{API}/{created[0]}")
    assert status == 404 and payload["error"]["code"] == "SESSION_NOT_FOUND"
    assert client.ok("GET", f"{API}/{fresh}")["id"] == fresh  # extended: still there
    database = short_lived.home / "data" / "localresearch.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        rows = [r[0] for r in conn.execute("SELECT id FROM research_sessions")]
    assert created[0] not in rows and fresh in rows
    listed = [s["id"] for s in client.ok("GET", API)]
    assert listed == [fresh]


@pytest.mark.slow  # 10,000 requests: ~20 s idle, ~60 s on a loaded machine
def test_ten_thousand_sessions_from_one_key_are_limited(short_lived: DaemonHandle) -> None:
    key = _key(short_lived, "flood")
    conn = http.client.HTTPConnection("127.0.0.1", short_lived.port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    created: set[str] = set()
    refused = 0
    start = time.time()
    for _ in range(10_000):
        conn.request("POST", API, body=b"{}", headers=headers)
        response = conn.getresponse()
        payload = json.loads(response.read())
        if response.status == 201:
            created.add(payload["data"]["sessionId"])
        else:
            assert response.status == 429 and payload["error"]["code"] == "RATE_LIMITED"
            refused += 1
    windows = int(time.time() // 3) - int(start // 3) + 1
    conn.close()
    assert len(created) <= 3 * windows and refused == 10_000 - len(created)
    database = short_lived.home / "data" / "localresearch.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        stored = {r[0] for r in db.execute("SELECT id FROM research_sessions")}
    assert stored <= created  # nothing half-written: no session without its 201
    # The owner is not rate-limited, but holds at most research.sessions_per_key live sessions.
    local = Client(short_lived.port, None)
    statuses = [local.request("POST", API)[0] for _ in range(6)]
    assert statuses == [201] * 5 + [429]
    assert local.request("GET", "/health")[0] == 200


def test_sigkill_during_execute_resumes_on_restart(served: DaemonHandle) -> None:
    import os
    import signal

    client = Client(served.port, None)
    session_id = client.ok("POST", API)["sessionId"]
    client.ok("POST", f"{API}/{session_id}/questions", {"topic": TOPIC})
    client.ok("POST", f"{API}/{session_id}/feedback", {"feedback": "a detailed review"})
    tasks = client.ok("POST", f"{API}/{session_id}/plan")["tasks"]
    assert len(tasks) == 6

    def execute() -> None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            client.request("POST", f"{API}/{session_id}/execute")  # cut by the kill

    executing = threading.Thread(target=execute, daemon=True)
    seen = []
    stream = events(served.port, f"{API}/{session_id}/stream", {})
    executing.start()
    for item in stream:
        seen.append(item)
        if item[2].get("message", "").startswith("Task 1 of"):
            pid = served.pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            break
    stream.close()
    executing.join(10)
    if any(name == "final-report" for _i, name, _d in seen):
        pytest.skip("the plan finished before the kill landed")
    served.start()  # the new daemon resumes the session's remaining tasks
    deadline = time.time() + 60
    while (detail := client.ok("GET", f"{API}/{session_id}"))["phase"] == "executing":
        assert time.time() < deadline
        time.sleep(0.2)
    assert detail["phase"] == "completed" and detail["finalReport"].startswith("# ")
    after = list(events(served.port, f"{API}/{session_id}/stream", {}))[1:]
    ids = [int(i) for i, _n, _d in after if i]
    assert ids == list(range(1, len(ids) + 1))  # every event kept, none repeated
    before = [(i, n, d) for i, n, d in seen if i]
    assert after[: len(before)] == before
    messages = [d.get("message", "") for _i, _n, d in after]
    assert sum(m.startswith("Task 1 of") for m in messages) == 1  # not redone
    assert any(m.startswith("Task 6 of") for m in messages)
    assert len(client.ok("GET", f"{API}/{session_id}/results")["results"]) == 6
