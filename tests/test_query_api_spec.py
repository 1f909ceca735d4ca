"""The query API as its spec (shared/specs/query-api.md) describes it, walked example by example
against a real daemon. This module is a client of the spec only: plain HTTP, no import of
localresearch (the daemon is started by the test fixture, as a user would with the CLI)."""

from __future__ import annotations

import http.client
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.daemon_fixture import DaemonHandle

NOTES = {
    "sqlite.md": "# SQLite\n\nSQLite keeps a whole database in one file.\n\n"
    "WAL mode lets readers continue while one writer commits.\n",
    "learning.md": "# Machine learning\n\nMachine learning fits a model to examples so it "
    "predicts new cases.\n\nOverfitting is when a model memorises its training examples.\n",
    "ai.md": "# Artificial intelligence\n\nArtificial intelligence is the study of systems "
    "that act sensibly.\n\nSearch and learning are its two main tools.\n",
}

CONFIG = """# My settings: this comment must survive writes made through the API.
[memory]
paths = [{notes}]
watch = false

[research]
dimensions = 3
max_rounds = 1

[api]
stream_keepalive = 0.2
webhook_backoff = 0.2
config_watch_interval = 0.2
"""


class Http:
    """A tiny JSON-over-HTTP client, as a user of the spec would write one."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.headers: dict[str, str] = {}

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 120.0,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        sent = {**self.headers, **(headers or {})}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            return response.status, dict(response.headers), response.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, _headers, raw = self.call(method, path, body, **kw)
        return status, json.loads(raw) if raw else None

    def lines(self, path: str, body: Any) -> list[bytes]:
        """An NDJSON response's lines, blank keep-alive lines included."""
        status, headers, raw = self.call("POST", path, body)
        assert status == 200, raw
        assert headers["Content-Type"].startswith("application/x-ndjson")
        return raw.split(b"\n")[:-1]


class Receiver:
    """A webhook receiver on loopback: answers 500 to the first `failures` posts, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.posts: list[tuple[float, int, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(size))
                status = 500 if len(receiver.posts) < receiver.failures else 200
                receiver.posts.append((time.monotonic(), status, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, limit: float = 20.0) -> list[tuple[float, int, Any]]:
        deadline = time.monotonic() + limit
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.posts


@pytest.fixture
def api(daemon_env: DaemonHandle, tmp_path: Path) -> Iterator[tuple[Http, DaemonHandle]]:
    notes = tmp_path / "notes"
    notes.mkdir()
    for name, text in NOTES.items():
        (notes / name).write_text(text, encoding="utf-8")
    (daemon_env.home / "config.toml").write_text(CONFIG.format(notes=json.dumps(str(notes))))
    daemon_env.start()
    client = Http(daemon_env.port)
    try:
        yield client, daemon_env
    finally:
        daemon_env.stop()


def _check_response(result: dict[str, Any]) -> None:
    """The spec's response shape, with values that show a real research run."""
    assert result["version"] == "1"
    assert isinstance(result["answer"], str) and result["answer"].strip()
    assert all(isinstance(c, str) for c in result["citations"])
    assert result["reasoning"] and all(isinstance(r, str) for r in result["reasoning"])
    metrics = result["metrics"]
    assert isinstance(metrics["cycles_completed"], int)
    tokens = metrics["total_tokens"]
    assert tokens["total"] == tokens["input"] + tokens["output"]


def test_query_examples(api: tuple[Http, DaemonHandle]) -> None:
    client, _daemon = api
    # POST /query
    status, result = client.json(
        "POST", "/query", {"version": "1", "query": "Explain machine learning"}
    )
    assert status == 200, result
    _check_response(result)
    assert any(c.startswith(str(Path("learning.md"))) or "learning.md:" in c
               for c in result["citations"])  # fmt: skip
    # The builtin engine scopes by the question and the notes (one topic here: one dimension).
    assert re.match(r"Scoped the question into \d+ dimensions?: \S", result["reasoning"][0])
    assert any(r.startswith("Gap round") for r in result["reasoning"])
    assert result["metrics"]["cycles_completed"] == 1  # max_rounds = 1

    # ?stream=true and /query/stream: one object per step, the result last.
    for path, question in (("/query?stream=true", "Explain machine learning"),
                           ("/query/stream", "Explain AI")):  # fmt: skip
        lines = client.lines(path, {"version": "1", "query": question})
        objects = [json.loads(line) for line in lines if line.strip()]
        assert len(objects) >= 5  # scope, 3 dimensions, a gap round, synthesis, the result
        *steps, last = objects
        assert all(step["partial"] is True and step["version"] == "1" for step in steps)
        assert [s["step"]["kind"] for s in steps][:1] == ["scope"]
        assert steps[-1]["reasoning"] == [s["step"]["text"] for s in steps]
        _check_response(last)
        assert "partial" not in last
        assert last["reasoning"] == steps[-1]["reasoning"]

    # Versions: echoed; unknown 400; removed 410; listed in /openapi.json.
    status, body = client.json("POST", "/query", {"version": "99", "query": "x"})
    assert status == 400 and "version" in body["detail"]
    status, body = client.json("POST", "/query", {"version": "0", "query": "x"})
    assert status == 410 and "no longer supported" in body["detail"]
    status, body = client.json("POST", "/query", {"query": "x"})
    assert status == 400 and "version" in body["detail"]
    status, doc = client.json("GET", "/openapi.json")
    assert status == 200
    schema = json.dumps(doc["components"]["schemas"]["QueryRequest"])
    assert '"x-versions"' in schema and '"deprecated": true' in schema
    versions = {v["version"]: v for v in doc["info"]["x-query-api-versions"]}
    assert versions["1"]["deprecated"] is False and versions["1"]["status"] == "current"
    assert versions["0"]["deprecated"] is True and versions["0"]["status"] == "removed"
    for path in ("/query", "/query/stream", "/query/batch", "/query/async", "/query/{id}",
                 "/metrics", "/capabilities", "/config"):  # fmt: skip
        assert path in doc["paths"], path


def test_batch_example(api: tuple[Http, DaemonHandle]) -> None:
    client, _daemon = api
    queries = [
        "What is SQLite?",
        "What is WAL mode?",
        "What is overfitting?",
        "What is artificial intelligence?",
    ]
    body = {"version": "1", "queries": [{"version": "1", "query": q} for q in queries]}
    status, page = client.json("POST", "/query/batch?page=2&page_size=2", body)
    assert status == 200, page
    assert (page["page"], page["page_size"], page["total"]) == (2, 2, 4)
    assert len(page["results"]) == 2
    for result in page["results"]:
        _check_response(result)
    # In order: the third and fourth questions, each answered from its own note.
    assert page["results"][0]["citations"][0].startswith("learning.md")
    assert page["results"][1]["citations"][0].startswith("ai.md")
    status, first = client.json("POST", "/query/batch", body)  # defaults: page 1, size 10
    assert status == 200 and (first["page"], first["page_size"]) == (1, 10)
    assert len(first["results"]) == 4
    status, past = client.json("POST", "/query/batch?page=3&page_size=2", body)
    assert status == 200 and past["results"] == [] and past["total"] == 4


def test_async_example_and_cancel_of_finished(api: tuple[Http, DaemonHandle]) -> None:
    client, _daemon = api
    status, accepted = client.json("POST", "/query/async", {"version": "1", "query": "Explain AI"})
    assert status == 200, accepted
    query_id = accepted["query_id"]
    assert str(uuid.UUID(query_id)) == query_id
    seen = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, state = client.json("GET", f"/query/{query_id}")
        assert status == 200
        seen.add(state.get("status"))
        if state.get("status") not in ("queued", "running"):
            break
        assert set(state) <= {"query_id", "status"}
        time.sleep(0.05)
    assert state["status"] == "complete"
    _check_response(state)
    # A finished query cannot be canceled: 404, as the spec says.
    status, body = client.json("DELETE", f"/query/{query_id}")
    assert status == 404 and "already finished" in body["detail"]
    status, again = client.json("GET", f"/query/{query_id}")
    assert status == 200 and again["answer"] == state["answer"]  # durable, not popped
    status, body = client.json("GET", f"/query/{uuid.uuid4()}")
    assert status == 404


def test_webhook_fails_twice_then_accepts(api: tuple[Http, DaemonHandle]) -> None:
    client, daemon = api
    receiver = Receiver(failures=2)
    body = {"version": "1", "query": "hi", "webhook_url": receiver.url}
    status, result = client.json("POST", "/query", body)
    assert status == 200, result  # the response does not wait for (or depend on) the hook
    posts = receiver.wait(3)
    assert [p[1] for p in posts] == [500, 500, 200]
    assert posts[-1][2] == result
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(posts)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[1] > gaps[0] * 1.3  # 0.2 s, then 0.4 s

    # [api].webhooks get the same payload; a hook that never accepts changes nothing.
    never = Receiver(failures=100)
    secret_url = never.url + "?token=s3cret-token"
    status, shown = client.json("PUT", "/config", {"api": {"webhooks": [secret_url]}})
    assert "s3cret-token" not in json.dumps(shown)
    assert status == 200
    status, result = client.json("POST", "/query", {"version": "1", "query": "hi"})
    assert status == 200
    assert len(never.wait(4)) == 4  # 1 attempt + 3 retries
    time.sleep(0.3)
    assert len(never.posts) == 4
    log = (daemon.home / "state" / "daemon.log").read_text()
    assert "webhook" in log and "failed after 4 attempts" in log
    assert "s3cret-token" not in log


def test_metrics_capabilities_health(api: tuple[Http, DaemonHandle]) -> None:
    client, _daemon = api
    status, _result = client.json("POST", "/query", {"version": "1", "query": "What is SQLite?"})
    assert status == 200
    client.json("POST", "/query", {"version": "2", "query": "x"})  # a 400
    status, headers, raw = client.call("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(raw.decode())}
    queries = families["localresearch_queries"]
    assert queries.type == "counter"
    done = [s for s in queries.samples if s.name.endswith("_total")]
    assert sum(s.value for s in done if s.labels["status"] == "complete") >= 1
    assert families["localresearch_query_duration_seconds"].type == "histogram"
    assert "localresearch_queries_in_flight" in families
    http_samples = families["localresearch_http_requests"].samples
    assert any(s.labels == {"family": "query", "status": "400"} for s in http_samples)
    jobs = {s.labels["state"]: s.value for s in families["localresearch_research_jobs"].samples}
    assert jobs["complete"] >= 1
    searches = families["localresearch_memory_search_seconds"].samples
    assert any(s.name.endswith("_count") and s.value > 0 for s in searches)
    for name in ("localresearch_tokens", "localresearch_open_streams",
                 "localresearch_rate_limit_refusals"):  # fmt: skip
        assert name in families, name

    status, caps = client.json("GET", "/capabilities")
    assert status == 200
    assert isinstance(caps["version"], str)
    assert "builtin" in caps["llm_backends"] and caps["llm_backend_status"]["builtin"]["usable"]
    # The spec's example lists a "mock" backend: here, the offline builtin engine's other name.
    assert "mock" in caps["llm_backends"] and caps["llm_backend_status"]["mock"]["usable"]
    assert "research" in caps["reasoning_modes"]
    current = caps["current_config"]
    assert (current["reasoning_mode"], current["loops"], current["llm_backend"]) == (
        "research", 1, "builtin",
    )  # fmt: skip
    status, health = client.json("GET", "/health")
    assert status == 200 and health["status"] == "ok"


def test_config_examples(api: tuple[Http, DaemonHandle]) -> None:
    client, daemon = api
    config_file = daemon.home / "config.toml"
    status, config = client.json("GET", "/config")
    assert status == 200
    assert (config["loops"], config["llm_backend"]) == (1, "builtin")
    assert config["research"]["dimensions"] == 3

    # PUT: a partial update, applied live (no restart), the file's comments kept.
    status, config = client.json("PUT", "/config", {"loops": 3})
    assert status == 200, config
    assert config["loops"] == 3 and config["restart_required"] == []
    assert "# My settings" in config_file.read_text()
    assert "max_rounds = 3" in config_file.read_text()
    status, caps = client.json("GET", "/capabilities")
    assert caps["current_config"]["loops"] == 3
    status, result = client.json("POST", "/query", {"version": "1", "query": "What is AI?"})
    assert status == 200 and result["metrics"]["cycles_completed"] >= 1

    # Bad values: 400 naming the key and what it expects; the file untouched.
    before = config_file.read_text()
    status, body = client.json("PUT", "/config", {"loops": "many"})
    assert status == 400 and "research.max_rounds" in body["detail"]
    assert "integer" in body["detail"]
    status, body = client.json("PUT", "/config", {"research": {"dimensions": 9}})
    assert status == 400 and "research.dimensions" in body["detail"] and "between" in body["detail"]
    status, body = client.json("PUT", "/config", {"no_such_setting": 1})
    assert status == 400 and "no_such_setting" in body["detail"]
    assert config_file.read_text() == before

    # A setting that needs a restart is said so.
    status, config = client.json("PUT", "/config", {"server": {"log_level": "debug"}})
    assert status == 200 and config["restart_required"] == ["server.log_level"]

    # The watcher applies edits of config.toml as they are saved.
    config_file.write_text(config_file.read_text().replace("max_rounds = 3", "max_rounds = 2"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if client.json("GET", "/config")[1]["loops"] == 2:
            break
        time.sleep(0.1)
    assert client.json("GET", "/config")[1]["loops"] == 2

    # DELETE reloads the file from disk.
    status, config = client.json("DELETE", "/config")
    assert status == 200 and config["loops"] == 2

    # An unknown backend: 400 naming the key and the backends there are; the file untouched.
    before = config_file.read_text()
    status, body = client.json("POST", "/config", {"loops": 2, "llm_backend": "nosuch"})
    assert status == 400 and "llm.provider" in body["detail"] and "builtin" in body["detail"]
    assert config_file.read_text() == before

    # POST replaces the whole configuration: the spec's exact example, whose offline "mock"
    # backend is this daemon's offline builtin engine.
    status, config = client.json("POST", "/config", {"loops": 2, "llm_backend": "mock"})
    assert status == 200, config
    assert (config["loops"], config["llm_backend"]) == (2, "builtin")
    assert config["research"]["dimensions"] == 4  # not given: back to its default
    assert config["memory"]["paths"] == []
    assert "# My settings" in config_file.read_text()
    assert 'provider = "builtin"' in config_file.read_text()
    status, result = client.json("POST", "/query", {"version": "1", "query": "What is AI?"})
    assert status == 200 and result["answer"].strip()  # the mock backend answers
    status, config = client.json("POST", "/config", {"loops": 2, "llm_backend": "builtin"})
    assert status == 200 and config["llm_backend"] == "builtin"


def test_authentication_roles_and_throttling(api: tuple[Http, DaemonHandle]) -> None:
    client, _daemon = api
    keys = {"api_key": "mysecret", "bearer_token": "mytoken",
            "api_keys": {"admin": "secret1", "user": "secret2"}}  # fmt: skip
    status, config = client.json("PUT", "/config", {"api": keys})
    assert status == 200, config
    assert config["api"]["api_key"] == "(set)" and config["api"]["bearer_token"] == "(set)"
    assert "mysecret" not in json.dumps(config)
    question = {"version": "1", "query": "test"}

    status, body = client.json("POST", "/query", question)
    assert status == 401 and "Credentials required" in body["detail"], body
    status, body = client.json("POST", "/query", question, headers={"X-API-Key": "wrong"})
    assert status == 403
    status, body = client.json("POST", "/query", question, headers={"X-API-Key": "mysecret"})
    assert status == 200, body
    bearer = {"Authorization": "Bearer mytoken"}
    status, body = client.json("POST", "/query", question, headers=bearer)
    assert status == 200
    # A valid bearer token wins over a wrong X-API-Key.
    status, body = client.json("GET", "/capabilities", headers={**bearer, "X-API-Key": "bad"})
    assert status == 200

    # role_permissions: `user` may query and read the docs, nothing else.
    user = {"X-API-Key": "secret2"}
    assert client.json("POST", "/query", question, headers=user)[0] == 200
    assert client.call("GET", "/openapi.json", headers=user)[0] == 200
    for method, path in (("GET", "/metrics"), ("GET", "/config"), ("PUT", "/config")):
        status, body = client.json(method, path, headers=user)
        assert status == 403 and "permission" in body["detail"], (path, body)
    admin = {"X-API-Key": "secret1"}
    assert client.call("GET", "/metrics", headers=admin)[0] == 200

    # Throttling: rate_limit requests per minute per client; then 429 with Retry-After.
    status, _ = client.json("PUT", "/config", {"api": {"rate_limit": 2}}, headers=admin)
    assert status == 200
    statuses = []
    for _ in range(3):
        status, headers, _raw = client.call("GET", "/openapi.json", headers=user)
        statuses.append(status)
    assert statuses == [200, 200, 429]
    assert int(headers["Retry-After"]) > 0
