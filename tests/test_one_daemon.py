"""One daemon per home: concurrent starters (`daemon start`, auto-starting commands) share one
daemon; `daemon stop` signals only the process that wrote the pid file; a SIGKILLed daemon
leaves no worker processes behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.daemon_fixture import DaemonHandle, daemon_env  # noqa: F401


def _spawn(daemon: DaemonHandle, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "localresearch", *args],
        env=daemon.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _daemons_of(daemon: DaemonHandle) -> list[psutil.Process]:
    """Live processes serving this home (they hold its lock file open)."""
    lock = str(daemon.home / "state" / "daemon.lock")
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if any(f.path == lock for f in process.open_files()):
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


@pytest.mark.slow
def test_concurrent_starts_share_one_daemon(daemon_env: DaemonHandle) -> None:  # noqa: F811
    try:
        starters = [_spawn(daemon_env, "daemon", "start", "--json") for _ in range(4)]
        results = [(p.wait(60), *p.communicate()) for p in starters]
        for code, out, err in results:
            assert code == 0, out + err
        pids = {json.loads(out)["pid"] for _, out, _ in results}
        assert len(pids) == 1, results
        assert sum(not json.loads(out)["already_running"] for _, out, _ in results) == 1
        assert [p.pid for p in _daemons_of(daemon_env)] == [pids.pop()]
    finally:
        daemon_env.stop()


@pytest.mark.slow
def test_three_cold_asks_at_once_all_answer(daemon_env: DaemonHandle) -> None:  # noqa: F811
    asks = [_spawn(daemon_env, "ask", "--no-memory", f"hello {n}") for n in range(3)]
    try:
        for ask in asks:
            code = ask.wait(90)
            out, err = ask.communicate()
            assert code == 0, out + err
            assert "already in use" not in err
        assert len(_daemons_of(daemon_env)) == 1
    finally:
        for ask in asks:  # a failed check must not leave the others' pipes open
            if ask.poll() is None:
                ask.kill()
            ask.communicate()
        daemon_env.stop()


@pytest.mark.slow
def test_a_second_foreground_daemon_is_refused(daemon_env: DaemonHandle) -> None:  # noqa: F811
    daemon_env.start()
    try:
        other = daemon_env.cli("daemon", "start", "--foreground", "--port", "1", timeout=30)
        assert other.returncode != 0
        assert "another daemon runs in this home" in other.stdout + other.stderr
    finally:
        daemon_env.stop()


def test_stop_never_signals_a_process_it_cannot_identify(
    daemon_env: DaemonHandle,  # noqa: F811
) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid_file = daemon_env.home / "state" / "daemon.pid"
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        for record in (
            {"pid": bystander.pid, "url": daemon_env.url, "port": daemon_env.port},
            {
                "pid": bystander.pid,
                "create_time": psutil.Process(bystander.pid).create_time(),
                "cmd": ["/usr/bin/research", "daemon", "start"],
                "url": daemon_env.url,
                "port": daemon_env.port,
            },
        ):
            pid_file.write_text(json.dumps(record))
            result = daemon_env.cli("daemon", "stop")
            assert result.returncode == 0, result.stderr
            time.sleep(0.2)
            assert bystander.poll() is None, "daemon stop killed an unrelated process"
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.slow
def test_workers_die_with_a_sigkilled_daemon(daemon_env: DaemonHandle) -> None:  # noqa: F811
    notes = daemon_env.home / "data" / "workspace" / "notes"
    notes.mkdir(parents=True)
    # Big HTML pages: reading them, not writing the index, is the slow part, so the indexer
    # hands them to worker processes.
    cell = "<td><span class='x'><b>cell</b> <i>text</i></span></td>"
    for n in range(600):
        rows = "".join(f"<tr>{cell * 8}</tr><p>Paragraph {p} of page {n}.</p>" for p in range(150))
        (notes / f"page-{n}.html").write_text(f"<html><body><h1>Page {n}</h1>{rows}</body></html>")
    daemon_env.start()
    pid = daemon_env.pid()
    assert pid is not None
    daemon = psutil.Process(pid)
    deadline = time.monotonic() + 60
    children: list[psutil.Process] = []
    while time.monotonic() < deadline and len(children) < 2:
        children = daemon.children(recursive=True)
        time.sleep(0.05)
    if len(children) < 2:
        daemon_env.stop()
        pytest.skip("indexing finished before worker processes were seen")
    os.kill(pid, signal.SIGKILL)
    _gone, alive = psutil.wait_procs(children, timeout=10)
    for process in alive:
        process.kill()
    assert not alive, [p.cmdline() for p in alive]
    # the home is free again: a new daemon starts and serves
    daemon_env.start()
    daemon_env.stop()
