"""What the CLI says when the daemon cannot be reached or started as configured: another program
on its port, a home or workspace that is a file, a bind start refuses, a value an environment
variable hides, and the port a restart keeps. Real CLI processes, real daemons, real sockets."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_fixture import DaemonHandle, _free_port


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr, result.stderr
    assert err.startswith("Error: ") and "\n" not in err, result.stderr
    return err


@pytest.fixture
def silent_listener(daemon_env: DaemonHandle) -> Iterator[socket.socket]:
    """A socket on the daemon's port that accepts connections (the kernel's backlog) and
    never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", daemon_env.port))
    sock.listen()
    yield sock
    sock.close()


@pytest.fixture
def other_http_server(daemon_env: DaemonHandle) -> Iterator[subprocess.Popen[bytes]]:
    """python3 -m http.server on the daemon's port: HTML pages, 404 and 501."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(daemon_env.port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", daemon_env.port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.05)
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("args", [("ask", "hello"), ("memory", "search", "x")])
def test_a_port_that_never_answers_is_named_without_hanging(
    daemon_env: DaemonHandle, silent_listener: socket.socket, args: tuple[str, ...]
) -> None:
    began = time.monotonic()
    result = daemon_env.cli(*args, timeout=30)
    assert time.monotonic() - began < 15
    assert result.returncode == 3
    err = _one_line_error(result)
    assert f"Port {daemon_env.port} on 127.0.0.1 is already in use" in err
    assert "not by the localresearch daemon" in err
    assert daemon_env.pid() is None


@pytest.mark.parametrize("args", [("ask", "hello"), ("memory", "search", "x")])
def test_another_http_server_on_the_port_is_named_not_shown(
    daemon_env: DaemonHandle, other_http_server: subprocess.Popen[bytes], args: tuple[str, ...]
) -> None:
    result = daemon_env.cli(*args, timeout=30)
    assert result.returncode == 3
    err = _one_line_error(result)
    assert "DOCTYPE" not in err and "http_error" not in err
    assert "already in use (by python" in err and f"pid {other_http_server.pid})" in err
    assert "not by the localresearch daemon" in err


def test_the_daemon_is_still_recognised(daemon: DaemonHandle) -> None:
    result = daemon.cli("memory", "search", "x")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "args", [("daemon", "start"), ("status",), ("memory", "search", "x"), ("config", "check")]
)
def test_a_home_that_is_a_file_is_one_line_for_every_command(
    daemon_env: DaemonHandle, tmp_path: Path, args: tuple[str, ...]
) -> None:
    file = tmp_path / "a-file"
    file.write_text("not a folder\n")
    daemon_env.env["LOCALRESEARCH_HOME"] = str(file)
    result = daemon_env.cli(*args)
    assert result.returncode == 2
    err = _one_line_error(result)
    assert f"{file} is not a directory" in err and "LOCALRESEARCH_HOME" in err


def test_help_needs_no_home(daemon_env: DaemonHandle, tmp_path: Path) -> None:
    file = tmp_path / "a-file"
    file.write_text("not a folder\n")
    daemon_env.env["LOCALRESEARCH_HOME"] = str(file)
    result = daemon_env.cli("daemon", "start", "--help")
    assert result.returncode == 0 and "Usage: research daemon start" in result.stdout


def test_a_workspace_that_is_a_file_is_refused_by_check_and_start(
    daemon_env: DaemonHandle, tmp_path: Path
) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("a file\n")
    (daemon_env.home / "config.toml").write_text(f'[memory]\nworkspace = "{file}"\n')
    check = daemon_env.cli("config", "check", "--json")
    assert check.returncode == 2
    data = json.loads(check.stdout)
    assert data["key"] == "memory.workspace" and data["line"] == 2
    assert str(file) in data["message"]
    start = daemon_env.cli("daemon", "start")
    assert start.returncode == 2 and str(file) in start.stderr
    assert "Traceback" not in start.stderr and daemon_env.pid() is None


def test_a_workspace_the_daemon_cannot_create_fails_before_it_binds(tmp_path: Path) -> None:
    from localresearch.workspace import WorkspaceError, prepare_workspace_dir

    file = tmp_path / "notes.txt"
    file.write_text("a file\n")
    with pytest.raises(WorkspaceError, match=str(file)):
        prepare_workspace_dir(file / "workspace")


async def test_services_that_fail_at_start_name_the_path(make_client, config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from localresearch.errors import LocalResearchError

    file = tmp_path / "notes.txt"
    file.write_text("a file\n")
    broken = dataclasses.replace(
        config, memory=dataclasses.replace(config.memory, workspace=str(file))
    )
    with pytest.raises(LocalResearchError, match=f"Not a directory: {file}"):
        await make_client(broken)


def test_a_bind_start_refuses_is_reported_by_config_check(daemon_env: DaemonHandle) -> None:
    (daemon_env.home / "config.toml").write_text('[server]\nbind = "0.0.0.0"\n')
    check = daemon_env.cli("config", "check")
    assert check.returncode == 2
    err = _one_line_error(check)
    assert "config.toml:2 [server.bind]" in err and "allow_remote" in err
    assert "no authentication" not in err and "API key" in err
    start = daemon_env.cli("daemon", "start")
    assert start.returncode == 2 and "server.bind" in start.stderr
    (daemon_env.home / "config.toml").write_text(
        '[server]\nbind = "0.0.0.0"\nallow_remote = true\n'
    )
    assert daemon_env.cli("config", "check").returncode == 0


def test_config_check_sees_a_file_value_an_environment_variable_overrides(
    daemon_env: DaemonHandle,
) -> None:
    (daemon_env.home / "config.toml").write_text('[server]\nport = "abc"\n')
    check = daemon_env.cli("config", "check")  # LOCALRESEARCH_SERVER__PORT is set
    assert check.returncode == 2
    err = _one_line_error(check)
    assert "config.toml:2 [server.port]" in err and "abc" in err

    (daemon_env.home / "config.toml").write_text("[server]\nport = 8123\n")
    daemon_env.env["LOCALRESEARCH_SERVER__PORT"] = "0"
    check = daemon_env.cli("config", "check")
    assert check.returncode == 2
    err = _one_line_error(check)
    assert "environment variable LOCALRESEARCH_SERVER__PORT [server.port]" in err
    assert "config.toml" not in err


def test_restart_keeps_the_port_given_to_start(daemon_env: DaemonHandle) -> None:
    other = _free_port()
    try:
        started = daemon_env.cli("daemon", "start", "--port", str(other))
        assert started.returncode == 0, started.stderr
        restarted = daemon_env.cli("daemon", "restart")
        assert restarted.returncode == 0, restarted.stderr
        assert f"127.0.0.1:{other}" in restarted.stdout
        status = json.loads(daemon_env.cli("daemon", "status", "--json").stdout)
        assert status["url"] == f"http://127.0.0.1:{other}"

        # A daemon started on the config's port restarts on the config's port.
        daemon_env.stop()
        daemon_env.start()
        restarted = daemon_env.cli("daemon", "restart")
        assert restarted.returncode == 0 and daemon_env.url in restarted.stdout
    finally:
        daemon_env.stop()
