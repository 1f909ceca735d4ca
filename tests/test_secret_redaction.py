"""No key leaves the daemon: providers that echo the key they were sent in their error bodies
(chat, embeddings, web search) leave no trace of it in anything the daemon wrote: its answers,
SSE streams, WebSocket messages, stats, job status, the database and the log."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localresearch.redaction import redact, remember
from tests.daemon_fixture import DaemonHandle, daemon_env  # noqa: F401
from tests.fakes.leaky import LeakyServer


def test_redact_masks_known_secrets_and_credential_shapes() -> None:
    secret = "Zq" + secrets.token_hex(12)
    remember(secret)
    assert secret not in redact(f"your key {secret} is wrong")
    assert redact("Invalid API key provided: Bearer sk-abc12345678") == (
        "Invalid API key provided: Bearer ***"
    )
    assert "tvly-" not in redact('{"detail": "bad tvly-ABCDEFGH12345"}')
    assert redact('x-api-key: "hunter22hunter"') == 'x-api-key: "***"'
    # ordinary words stay
    assert redact("no first token within 120 s (first_token_timeout)") == (
        "no first token within 120 s (first_token_timeout)"
    )
    plain = "needs an API key: set llm.api_key_env"
    assert redact(plain) == plain
    path = "Not a memory source: /home/u/sk-learning-notes"  # key-like prefix, no digit
    assert redact(path) == path


@pytest.fixture
def leaky() -> Iterator[LeakyServer]:
    server = LeakyServer()
    server.start()
    yield server
    server.stop()


def _call(
    daemon: DaemonHandle, method: str, path: str, body: Any = None, timeout: float = 30
) -> bytes:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        daemon.url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        return bytes(exc.read())


def _wait_job(daemon: DaemonHandle, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = json.loads(_call(daemon, "GET", f"/api/research/deep/{job_id}/status"))
        if status["status"] in ("complete", "error", "cancelled"):
            return dict(status)
        time.sleep(0.2)
    raise AssertionError("job did not finish")


def _everything_written(home: Path) -> bytes:
    """Every byte under the home: database (and its WAL), log, state files, workspace."""
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


@pytest.mark.slow
def test_keys_echoed_by_providers_never_leave_the_daemon(
    daemon_env: DaemonHandle,  # noqa: F811
    leaky: LeakyServer,
) -> None:
    keys = {
        "LEAK_EMBED_KEY": "Ek" + secrets.token_hex(16),
        "LEAK_SEARCH_KEY": "Sk" + secrets.token_hex(16),
        "LEAK_CHAT_KEY": "Ck" + secrets.token_hex(16),
    }
    env = daemon_env.env
    env.update(keys)
    env.update(
        LOCALRESEARCH_MEMORY__EMBEDDINGS__PROVIDER="openai",
        LOCALRESEARCH_MEMORY__EMBEDDINGS__MODEL="leaky-embed",
        LOCALRESEARCH_MEMORY__EMBEDDINGS__BASE_URL=f"{leaky.url}/v1",
        LOCALRESEARCH_MEMORY__EMBEDDINGS__API_KEY_ENV="LEAK_EMBED_KEY",
        LOCALRESEARCH_RESEARCH__WEB_SEARCH="tavily",
        LOCALRESEARCH_RESEARCH__WEB_SEARCH_URL=leaky.url,
        LOCALRESEARCH_RESEARCH__WEB_SEARCH_KEY_ENV="LEAK_SEARCH_KEY",
        LOCALRESEARCH_LLM__API_KEY_ENV="LEAK_CHAT_KEY",
        LOCALRESEARCH_LLM__MAX_RETRIES="0",
    )
    workspace = daemon_env.home / "data" / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "b12.md").write_text("# B12\n\nVitamin B12 lowers homocysteine.\n")
    said: list[bytes] = []

    # Embeddings and web search, with the offline engine.
    daemon_env.start()
    try:
        deadline = time.monotonic() + 30
        stats: dict[str, Any] = {}
        while time.monotonic() < deadline:
            said.append(_call(daemon_env, "GET", "/api/memory/stats"))
            stats = json.loads(said[-1])
            if (stats.get("embeddings") or {}).get("error"):
                break
            time.sleep(0.2)
        assert "401" in stats["embeddings"]["error"]  # the failure is reported ...
        said.append(_call(daemon_env, "GET", "/api/memory/search?q=homocysteine"))
        said.append(_call(daemon_env, "POST", "/api/memory/search", {"query": "homocysteine"}))
        job = json.loads(
            _call(daemon_env, "POST", "/api/research/deep", {"query": "B12 and homocysteine?"})
        )
        status = _wait_job(daemon_env, job["researchId"])
        said.append(json.dumps(status).encode())
        said.append(_call(daemon_env, "GET", f"/api/research/deep/{job['researchId']}"))
        assert b"tavily search failed: HTTP 401" in b"".join(said)  # ... and so is this one
    finally:
        daemon_env.stop()

    # Each chat provider, with its own wire format and error shape.
    for provider, base in (
        ("openai", f"{leaky.url}/v1"),
        ("anthropic", leaky.url),
        ("ollama", leaky.url),
    ):
        env.update(LOCALRESEARCH_LLM__PROVIDER=provider, LOCALRESEARCH_LLM__BASE_URL=base)
        daemon_env.start()
        try:
            said.append(_call(daemon_env, "POST", "/api/chat", {"message": "hello"}))
            assert b"provider_error" in said[-1], said[-1]
            said.append(_call(daemon_env, "POST", "/api/chat/stream", {"message": "hello"}))
            assert b'"error"' in said[-1]
            said.append(_call(daemon_env, "GET", "/api/models"))
            said.append(_call(daemon_env, "GET", "/api/status"))
        finally:
            daemon_env.stop()
    said.append(daemon_env.cli("daemon", "logs", "-n", "500").stdout.encode())

    written = _everything_written(daemon_env.home)
    assert b"Incorrect API key provided" in b"".join(said) + written  # the fake was reached
    for name, key in keys.items():
        for where, data in (("responses", b"".join(said)), ("files", written)):
            assert key.encode() not in data, f"{name} leaked in {where}"
