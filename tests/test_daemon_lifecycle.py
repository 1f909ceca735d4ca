"""A real daemon process: start, status, double start, stop, restart, stale pid, failures."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from tests.daemon_fixture import DaemonHandle


def _get(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def test_start_status_stop(daemon_env: DaemonHandle) -> None:
    result = daemon_env.start()
    assert "Started: pid" in result.stdout and daemon_env.url in result.stdout
    pid = daemon_env.pid()
    assert pid is not None and psutil.pid_exists(pid)
    assert _get(daemon_env.url + "/health") == {"status": "ok"}

    status = daemon_env.cli("daemon", "status", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["running"] is True and data["pid"] == pid and data["url"] == daemon_env.url
    assert data["version"] and data["uptime_seconds"] >= 0

    again = daemon_env.cli("daemon", "start")
    assert again.returncode == 0
    assert "Already running" in again.stdout and str(pid) in again.stdout

    stopped = daemon_env.stop()
    assert stopped.returncode == 0 and f"Stopped pid {pid}" in stopped.stdout
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not (daemon_env.home / "state" / "daemon.pid").exists()
    status = daemon_env.cli("daemon", "status", "--json")
    assert status.returncode == 3 and json.loads(status.stdout)["running"] is False
    assert "Not running" in daemon_env.cli("daemon", "stop").stdout


def test_restart_changes_pid_and_logs_are_written(daemon: DaemonHandle) -> None:
    first = daemon.pid()
    result = daemon.cli("daemon", "restart")
    assert result.returncode == 0, result.stderr
    second = daemon.pid()
    assert second is not None and second != first
    assert _get(daemon.url + "/health") == {"status": "ok"}
    logs = daemon.cli("daemon", "logs", "-n", "20")
    assert "listening on" in logs.stdout and "stopped" in logs.stdout


@pytest.mark.parametrize("setting", ["true", "false"])
def test_daemon_runs_on_uvloop_unless_turned_off(daemon_env: DaemonHandle, setting: str) -> None:
    pytest.importorskip("uvloop")  # not on Windows
    daemon_env.env["LOCALRESEARCH_SERVER__UVLOOP"] = setting
    daemon_env.start()
    try:
        assert _get(daemon_env.url + "/health") == {"status": "ok"}
        logs = daemon_env.cli("daemon", "logs", "-n", "20").stdout
    finally:
        daemon_env.stop()
    expected = "uvloop" if setting == "true" else "asyncio"
    assert f"listening on {daemon_env.url} ({expected} loop)" in logs, logs


def test_port_in_use_is_explained(daemon_env: DaemonHandle) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", daemon_env.port))
        blocker.listen()
        result = daemon_env.cli("daemon", "start")
    assert result.returncode == 1
    assert f"Port {daemon_env.port}" in result.stderr and "already in use" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def _processes_of_home(home: object) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("LOCALRESEARCH_HOME") == str(home):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def test_a_start_refused_by_its_options_leaves_no_daemon_behind(daemon_env: DaemonHandle) -> None:
    # `daemon start` forks the daemon before click parses the options: a usage error must
    # take that child down with it and leave the home's lock free.
    from localresearch.daemon.lock import home_is_locked

    result = daemon_env.cli("daemon", "start", "--port", "0")
    assert result.returncode == 2 and "--port" in result.stderr
    assert "Traceback" not in result.stderr
    assert not home_is_locked(daemon_env.home / "state" / "daemon.lock")
    assert _processes_of_home(daemon_env.home) == []
    assert not (daemon_env.home / "state" / "daemon.pid").exists()
    daemon_env.start()
    assert _get(daemon_env.url + "/health") == {"status": "ok"}
    daemon_env.stop()


def test_bad_config_is_reported_not_a_traceback(daemon_env: DaemonHandle) -> None:
    (daemon_env.home / "config.toml").write_text("[server]\nbind = 127\n")
    result = daemon_env.cli("daemon", "start")
    assert result.returncode == 2
    assert "config.toml:2" in result.stderr and "server.bind" in result.stderr
    assert "expected a string" in result.stderr
    assert "Traceback" not in result.stderr
    check = daemon_env.cli("config", "check", "--json")
    assert check.returncode == 2 and json.loads(check.stdout)["line"] == 2


def test_non_loopback_bind_needs_explicit_setting(daemon_env: DaemonHandle) -> None:
    env = dict(daemon_env.env, LOCALRESEARCH_SERVER__BIND="0.0.0.0")
    result = subprocess.run(
        [sys.executable, "-m", "localresearch", "daemon", "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    # A bad configuration (exit 2), as `research config check` reports it, naming the variable.
    assert result.returncode == 2 and "allow_remote" in result.stderr
    assert "environment variable LOCALRESEARCH_SERVER__BIND" in result.stderr


def test_stale_pid_file_of_dead_process_is_cleaned(daemon_env: DaemonHandle) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file = daemon_env.home / "state" / "daemon.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(json.dumps({"pid": dead.pid, "url": daemon_env.url, "create_time": 1.0}))
    status = daemon_env.cli("daemon", "status")
    assert status.returncode == 3 and not pid_file.exists()
    daemon_env.start()
    assert daemon_env.pid() not in (None, dead.pid)
    daemon_env.stop()


def test_pid_reused_by_another_program_is_not_killed(daemon_env: DaemonHandle) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file = daemon_env.home / "state" / "daemon.pid"
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        # Same pid, but the process was created at another time: not our daemon.
        created = psutil.Process(other.pid).create_time() - 1000
        pid_file.write_text(
            json.dumps({"pid": other.pid, "url": daemon_env.url, "create_time": created})
        )
        stop = daemon_env.cli("daemon", "stop")
        assert "Not running" in stop.stdout
        assert other.poll() is None, "stop must not signal an unrelated process"
        assert not pid_file.exists()
    finally:
        other.kill()
        other.wait()


def test_sigterm_shuts_down_gracefully(daemon: DaemonHandle) -> None:
    pid = daemon.pid()
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "daemon did not exit on SIGTERM"
        time.sleep(0.05)
    assert not (daemon.home / "state" / "daemon.pid").exists()
    log = (daemon.home / "state" / "daemon.log").read_text()
    assert "shutting down" in log and "stopped" in log and "Traceback" not in log


def test_foreground_logs_to_stderr(daemon_env: DaemonHandle) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "localresearch", "daemon", "start", "--foreground"],
        env=daemon_env.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if _get(daemon_env.url + "/health")["status"] == "ok":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        assert daemon_env.cli("daemon", "status").returncode == 0
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "listening on" in err and "stopped" in err


def test_cli_without_daemon_says_how_to_start(daemon_env: DaemonHandle) -> None:
    result = daemon_env.cli("status")
    assert result.returncode == 3 and "research daemon start" in result.stdout


def test_config_commands(daemon_env: DaemonHandle) -> None:
    assert daemon_env.cli("config", "path").stdout.strip() == str(daemon_env.home / "config.toml")
    r = daemon_env.cli("config", "set", "research.dimensions", "5")
    assert r.returncode == 0, r.stderr
    assert daemon_env.cli("config", "get", "research.dimensions").stdout.strip() == "5"
    # the environment wins over the file
    assert daemon_env.cli("config", "get", "server.port").stdout.strip() == str(daemon_env.port)
    bad = daemon_env.cli("config", "set", "server.port", "lots")
    assert bad.returncode == 2 and "expected an integer" in bad.stderr
    shown = json.loads(daemon_env.cli("config", "show", "--json").stdout)
    assert shown["research"]["dimensions"] == 5
    assert daemon_env.cli("config", "check").returncode == 0


@pytest.mark.parametrize(
    "args",
    [["--help"], ["daemon", "--help"], ["daemon", "start", "--help"], ["config", "set", "--help"]],
)
def test_help_has_examples(daemon_env: DaemonHandle, args: list[str]) -> None:
    result = daemon_env.cli(*args)
    assert result.returncode == 0 and "Example" in result.stdout


def test_server_disabled_runs_without_http(daemon_env: DaemonHandle) -> None:
    daemon_env.env["LOCALRESEARCH_SERVER__ENABLED"] = "false"
    started = daemon_env.cli("daemon", "start")
    assert started.returncode == 0, started.stderr
    assert "without HTTP" in started.stdout
    try:
        status = json.loads(daemon_env.cli("daemon", "status", "--json").stdout)
        assert status["running"] is True and status["http"] is False
        with pytest.raises(OSError):
            _get(daemon_env.url + "/health")
    finally:
        stopped = daemon_env.stop()
    assert "Stopped pid" in stopped.stdout


def test_a_start_time_read_a_second_apart_is_still_the_same_process() -> None:
    """psutil's start times, derived from a whole-second boot time, can differ by a second
    between readers: the live daemon must not look dead (its pid file was removed that way)."""
    from localresearch.daemon.pidfile import is_alive

    me = psutil.Process()
    record = {"pid": me.pid, "create_time": me.create_time(), "cmd": me.cmdline()}
    assert is_alive(record)
    assert is_alive({**record, "create_time": me.create_time() + 1.0})
    assert is_alive({**record, "create_time": me.create_time() - 1.5})
    assert not is_alive({**record, "create_time": me.create_time() - 1000})
    assert not is_alive({**record, "cmd": ["something", "else"]})
