"""A real daemon process in the test's LOCALRESEARCH_HOME on a free port, driven by the CLI."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call_json(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One JSON request to the daemon on `port`: (status, decoded body or None if empty)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw.strip() else None
    finally:
        conn.close()


@dataclass
class DaemonHandle:
    home: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(
        self, *args: str, timeout: float = 60.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `research ARGS` as a user would, in this daemon's home."""
        return subprocess.run(
            [sys.executable, "-m", "localresearch", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )

    def start(self) -> subprocess.CompletedProcess[str]:
        result = self.cli("daemon", "start")
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def stop(self) -> subprocess.CompletedProcess[str]:
        return self.cli("daemon", "stop")

    def pid(self) -> int | None:
        try:
            return int(json.loads((self.home / "state" / "daemon.pid").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None


@pytest.fixture
def daemon_env(home: Path) -> DaemonHandle:
    """A configured but not started daemon (port free, home isolated)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALRESEARCH_")}
    env.update(
        LOCALRESEARCH_HOME=str(home),
        LOCALRESEARCH_SERVER__PORT=str(port),
        LOCALRESEARCH_SERVER__SHUTDOWN_TIMEOUT="5",
        LOCALRESEARCH_HEARTBEAT__ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    return DaemonHandle(home=home, port=port, env=env)


@pytest.fixture
def daemon(daemon_env: DaemonHandle) -> Iterator[DaemonHandle]:
    """A started daemon; stopped (and killed if need be) after the test."""
    daemon_env.start()
    yield daemon_env
    daemon_env.stop()
    pid = daemon_env.pid()
    if pid is not None:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
