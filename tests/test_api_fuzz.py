"""Schemathesis against a live daemon's /openapi.json: every operation, a bounded number of
generated requests each, without and with keys configured. Passes with 0 server errors and
0 responses that break their declared schema or content type.

Its own CI stage (`pytest -m schemathesis`, see .ci/run): about a minute per run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.schemathesis, pytest.mark.slow]

KEY = "fuzz-admin-key-0123456789abcdef"
EXAMPLES = "12"
# POST /api/memory/sources could add "/" (it exists) and index the machine; its input checks
# have their own tests. The WebSocket is not HTTP request/response.
EXCLUDED = ("--exclude-path", "/api/ws", "--exclude-path", "/api/memory/sources")


def _st() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    return found


def _run(daemon: Any, *extra: str) -> str:
    command = [
        _st(), "run", f"{daemon.url}/openapi.json",
        "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
        "--phases", "examples,fuzzing", "-n", EXAMPLES, "--seed", "20261201",
        "--generation-database", "none", "--no-shrink", "--workers", "2",
        "--request-timeout", "30", "--no-color", *EXCLUDED, *extra,
    ]  # fmt: skip
    done = subprocess.run(
        command, env=daemon.env, capture_output=True, text=True, timeout=600, cwd=daemon.home
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    return output


def _document_is_valid(daemon: Any, headers: dict[str, str]) -> None:
    import urllib.request

    from openapi_spec_validator import validate

    request = urllib.request.Request(f"{daemon.url}/openapi.json", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        validate(json.loads(response.read()))


def test_schemathesis_without_keys(daemon: Any) -> None:
    _document_is_valid(daemon, {})
    output = _run(daemon)
    assert "Tested: " in output


def test_schemathesis_with_keys(daemon_env: Any) -> None:
    daemon_env.env["LOCALRESEARCH_API__API_KEY"] = KEY
    daemon_env.start()
    try:
        _document_is_valid(daemon_env, {"X-API-Key": KEY})
        output = _run(daemon_env, "-H", f"Authorization: Bearer {KEY}")
        assert "Tested: " in output
        logged = b"".join(p.read_bytes() for p in (daemon_env.home / "state").glob("daemon.log*"))
        assert KEY.encode() not in logged
    finally:
        daemon_env.stop()
