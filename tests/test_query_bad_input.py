"""Bad input to the query API gets a clear 4xx in its envelope, stores nothing, and leaves the
daemon healthy."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_fixture import DaemonHandle
from tests.test_query_api_spec import Http


def _counts(home: Path) -> tuple[int, int]:
    database = home / "data" / "localresearch.db"
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        jobs = conn.execute("SELECT count(*) FROM research_jobs").fetchone()[0]
        runs = conn.execute("SELECT count(*) FROM query_runs").fetchone()[0]
    return int(jobs), int(runs)


Q = {"version": "1", "query": "What is SQLite?"}

BAD: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/query", {"query": "x"}, 400, "Missing required parameter: version"),
    ("POST", "/query", {"version": 1, "query": "x"}, 400, "version must be a string"),
    ("POST", "/query", {"version": "7", "query": "x"}, 400, "Unknown version '7'"),
    ("POST", "/query", {"version": "0", "query": "x"}, 410, "no longer supported"),
    ("POST", "/query/stream", {"version": "0", "query": "x"}, 410, "no longer supported"),
    ("POST", "/query/async", {"version": "0", "query": "x"}, 410, "no longer supported"),
    ("POST", "/query/batch", {"version": "0", "queries": [Q]}, 410, "no longer supported"),
    ("POST", "/query/batch", {"version": "1", "queries": [{"version": "0", "query": "x"}]},
     410, "queries[0].version"),
    ("POST", "/query", {**Q, "model": "builtin/gpt-4o"}, 400, "extractive"),
    ("POST", "/query", {**Q, "model": "ollama/llama3"}, 400, "model"),
    ("POST", "/query", {"version": "1"}, 400, "Missing required parameter: query"),
    ("POST", "/query", {"version": "1", "query": 5}, 400, "Parameter query must be a string"),
    ("POST", "/query", {"version": "1", "query": ""}, 400, "query"),
    ("POST", "/query", {**Q, "loops": "two"}, 400, "Parameter loops must be an integer"),
    ("POST", "/query", {**Q, "loops": 99}, 400, "loops"),
    ("POST", "/query", {**Q, "dimensions": 0}, 400, "dimensions"),
    ("POST", "/query", {**Q, "model": "gpt-9"}, 400, "model"),
    ("POST", "/query", {**Q, "colour": "red"}, 400, "colour"),
    ("POST", "/query", {**Q, "webhook_url": "file:///etc/passwd"}, 400, "webhook_url"),
    ("POST", "/query/async", {**Q, "webhook_url": "file:///etc/passwd"}, 400, "webhook_url"),
    ("POST", "/query/async", {**Q, "webhook_url": "gopher://x/"}, 400, "webhook_url"),
    ("POST", "/query/stream", {**Q, "extra": 1}, 400, "extra"),
    ("POST", "/query?stream=maybe", Q, 400, "stream"),
    ("POST", "/query/batch?page_size=0", {"version": "1", "queries": [Q]}, 400, "page_size"),
    ("POST", "/query/batch?page_size=1000000", {"version": "1", "queries": [Q]}, 400,
     "page_size"),
    ("POST", "/query/batch?page=0", {"version": "1", "queries": [Q]}, 400, "page"),
    ("POST", "/query/batch?page=x", {"version": "1", "queries": [Q]}, 400, "page"),
    ("POST", "/query/batch", {"version": "1", "queries": []}, 400, "queries"),
    ("POST", "/query/batch", {"version": "1", "queries": [Q, {"query": "x"}]}, 400,
     "queries[1].version"),
    ("POST", "/query/batch", {"version": "1", "queries": [Q, {**Q, "webhook_url": "ftp://h/"}]},
     400, "webhook_url"),
    ("PUT", "/config", {"api": {"webhooks": ["file:///etc/passwd"]}}, 400, "api.webhooks"),
    ("PUT", "/config", {"server": {"port": "eighty"}}, 400, "server.port"),
    ("GET", "/query/not-a-uuid", None, 404, "No query"),
    ("DELETE", "/query/00000000-0000-0000-0000-000000000000", None, 404, "No query"),
]  # fmt: skip


@pytest.fixture
def client(daemon: DaemonHandle) -> Http:
    http = Http(daemon.port)
    assert http.json("GET", "/capabilities")[0] == 200  # the core has started (tables exist)
    return http


def test_bad_input_is_a_clear_4xx_and_stores_nothing(daemon: DaemonHandle, client: Http) -> None:
    before = _counts(daemon.home)
    config_before = (
        (daemon.home / "config.toml").read_text() if (daemon.home / "config.toml").exists() else ""
    )
    for method, path, body, want, words in BAD:
        status, _headers, raw = client.call(method, path, body)
        assert status == want, (path, body, raw)
        error = json.loads(raw)
        assert words in error["detail"], (path, body, error)
        assert error["error"]["message"] == error["detail"]
        assert "Traceback" not in raw.decode()
    assert _counts(daemon.home) == before
    config_after = (
        (daemon.home / "config.toml").read_text() if (daemon.home / "config.toml").exists() else ""
    )
    assert config_after == config_before
    assert client.json("GET", "/health")[0] == 200
    status, result = client.json("POST", "/query", Q)
    assert status == 200 and result["version"] == "1"


def test_malformed_and_huge_bodies(daemon: DaemonHandle, client: Http) -> None:
    before = _counts(daemon.home)
    status, _h, raw = client.call("POST", "/query", raw=b'{"version": "1", "query": ')
    assert status == 400 and "Malformed JSON" in json.loads(raw)["detail"]
    status, _h, raw = client.call("POST", "/query", raw=b"[1, 2]")
    assert status == 400
    status, _h, raw = client.call(
        "POST", "/query", raw=b"version=1", headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    huge = json.dumps({"version": "1", "query": "x" * (10 * 1024 * 1024)}).encode()
    try:
        status, _h, raw = client.call("POST", "/query", raw=huge)
    except (BrokenPipeError, ConnectionResetError):
        status, raw = 413, b'{"detail": "the daemon closed the connection at its limit"}'
    assert status == 413, raw
    assert _counts(daemon.home) == before
    assert client.json("GET", "/health")[0] == 200
    assert client.json("POST", "/query", Q)[0] == 200


async def test_every_error_on_the_query_paths_carries_detail(make_client: Any) -> None:
    """The router's own answers too (a method a path does not take, an unknown sub-path) and
    the guard's: FastAPI's `detail` beside the envelope, `Allow` on a 405. Other paths keep
    the daemon's envelope alone."""
    client = await make_client()
    wrong_method = [("PUT", "/query", "POST"), ("GET", "/query", "POST"),
                    ("POST", "/metrics", "GET"), ("PATCH", "/config", "DELETE,GET,POST,PUT"),
                    ("DELETE", "/capabilities", "GET")]  # fmt: skip
    for method, path, allow in wrong_method:
        response = await client.request(method, path)
        body = await response.json()
        assert response.status == 405, (method, path)
        assert response.headers["Allow"] == allow
        assert body["detail"] == body["error"]["message"] and "not allowed" in body["detail"]
        assert body["error"]["code"] == "method_not_allowed"
    for method, path in [("GET", "/query/a/b"), ("GET", "/metrics/x"), ("POST", "/config/x"),
                         ("GET", "/capabilities/x")]:  # fmt: skip
        response = await client.request(method, path)
        body = await response.json()
        assert response.status == 404, (method, path)
        assert body == {"detail": f"No such endpoint: {method} {path}",
                        "error": {"code": "not_found", "message": body["detail"]}}  # fmt: skip
    foreign = await client.get("/capabilities", headers={"Host": "evil.example"})
    assert foreign.status == 403 and "Host header" in (await foreign.json())["detail"]
    # Not the query API's: the daemon's envelope only.
    for method, path, status in [("PUT", "/api/status", 405), ("GET", "/api/nope", 404),
                                 ("GET", "/queryx", 404), ("GET", "/configure", 404)]:  # fmt: skip
        response = await client.request(method, path)
        assert response.status == status and set(await response.json()) == {"error"}, path
