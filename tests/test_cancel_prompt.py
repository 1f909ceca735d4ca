"""Cancels are prompt: a research job cancelled while its model is thinking aborts the HTTP
request to the model and ends `cancelled` within a second, not at the model's timeout."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from tests.daemon_fixture import DaemonHandle, daemon_env  # noqa: F401
from tests.fakes.stalling import StallingModel


def _call(daemon: DaemonHandle, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        daemon.url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"} if body is not None else {},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


@pytest.mark.slow
@pytest.mark.parametrize("first_chunk", ["", "Thinking about"])
def test_a_job_cancelled_during_a_model_call_ends_cancelled_at_once(
    daemon_env: DaemonHandle,  # noqa: F811
    first_chunk: str,
) -> None:
    model = StallingModel(first_chunk=first_chunk)
    model.start()
    daemon_env.env.update(
        LOCALRESEARCH_LLM__PROVIDER="openai",
        LOCALRESEARCH_LLM__BASE_URL=model.url,
        LOCALRESEARCH_LLM__MODEL="stall",
        LOCALRESEARCH_LLM__FIRST_TOKEN_TIMEOUT="60",
        LOCALRESEARCH_LLM__IDLE_TIMEOUT="60",
    )
    try:
        daemon_env.start()
        job = _call(daemon_env, "POST", "/api/research/deep", {"query": "What is B12?"})
        job_id = job["researchId"]
        deadline = time.monotonic() + 30
        while not model.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert model.started, "the job never called the model"
        time.sleep(0.2)  # the model is now stalled mid-call
        asked = time.monotonic()
        _call(daemon_env, "DELETE", f"/api/research/deep/{job_id}")
        status: dict[str, Any] = {}
        while time.monotonic() - asked < 5:
            status = _call(daemon_env, "GET", f"/api/research/deep/{job_id}/status")
            if status["status"] != "running":
                break
            time.sleep(0.02)
        took = time.monotonic() - asked
        assert status["status"] == "cancelled", status
        assert took < 1.0, f"cancel took {took:.2f} s"
        assert "partialReport" in status
        hang_up = time.monotonic() + 2
        while not model.hung_up and time.monotonic() < hang_up:
            time.sleep(0.02)
        assert model.hung_up and model.hung_up[0] - asked < 1.0, "the model request stayed open"
    finally:
        daemon_env.stop()
        model.stop()
