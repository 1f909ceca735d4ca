"""Faults give clear states: a config that is not UTF-8, storage that refuses writes, a
database deleted under the daemon, a daemon that dies in the middle of a streamed answer."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from localresearch.config import load_config
from localresearch.errors import Unavailable
from localresearch.server.app import make_app
from localresearch.store import Database
from tests.daemon_fixture import DaemonHandle, daemon_env  # noqa: F401
from tests.fakes.stalling import StallingModel


def _post(daemon: DaemonHandle, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        daemon.url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_a_config_that_is_not_utf8_is_a_config_error_everywhere(
    daemon_env: DaemonHandle,  # noqa: F811
) -> None:
    daemon_env.start()
    config = daemon_env.home / "config.toml"
    config.write_bytes(b'[server]\nlog_level = "info"\n# caf\xe9 notes\n')
    try:
        for args in (["config", "check"], ["ask", "hi"], ["memory", "search", "x"], ["status"]):
            result = daemon_env.cli(*args)
            output = result.stdout + result.stderr
            assert "Traceback" not in output and "UnicodeDecodeError" not in output, output
            if result.returncode == 2:
                assert f"{config}:3" in output and "UTF-8" in output, output
        checked = daemon_env.cli("config", "check")
        assert checked.returncode == 2
        pid = daemon_env.pid()
        stopped = daemon_env.stop()  # still works: it needs only the pid file
        assert stopped.returncode == 0, stopped.stderr
        assert "Traceback" not in stopped.stderr
        assert pid is not None and not _alive(pid)
    finally:
        config.write_text("")
        daemon_env.stop()


def _alive(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.slow
def test_a_database_deleted_under_the_daemon_refuses_writes(
    daemon_env: DaemonHandle,  # noqa: F811
) -> None:
    daemon_env.start()
    try:
        status, body = _post(daemon_env, "/api/sessions", {"title": "before"})
        assert status == 201, body
        database = daemon_env.home / "data" / "localresearch.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        for n in range(3):
            status, body = _post(daemon_env, "/api/sessions", {"title": f"after {n}"})
            assert status == 503, body
            assert body["error"]["code"] == "unavailable"
            assert "deleted" in body["error"]["message"]
    finally:
        daemon_env.stop()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(tmp_path / "test.db")
    db.open()
    db.write_sync(lambda conn: conn.execute("CREATE TABLE t (v BLOB)"))
    yield db
    db.close()


def test_a_full_database_is_unavailable_naming_the_cause(database: Database) -> None:
    # SQLite's own size cap: the same SQLITE_FULL a full disk gives
    database.write_sync(lambda conn: conn.execute("PRAGMA max_page_count = 40"))
    with pytest.raises(Unavailable, match="disk is full"):
        database.write_sync(lambda conn: conn.execute("INSERT INTO t VALUES (?)", (b"x" * 10**6,)))
    database.write_sync(lambda conn: conn.execute("INSERT INTO t VALUES (x'00')"))  # still usable


def test_a_read_only_database_is_unavailable_naming_the_cause(database: Database) -> None:
    database._enqueue(lambda conn: conn.execute("PRAGMA query_only = ON"), in_transaction=False)
    with pytest.raises(Unavailable, match="read-only"):
        database.write_sync(lambda conn: conn.execute("INSERT INTO t VALUES (x'01')"))


async def _disk_full(request: web.Request) -> web.Response:
    raise OSError(errno.ENOSPC, "No space left on device", "/data/workspace/memory/today.md")


async def _read_only(request: web.Request) -> web.Response:
    raise OSError(errno.EROFS, "Read-only file system", "/data/HEARTBEAT.md")


async def test_storage_errors_anywhere_are_503_naming_the_cause(
    aiohttp_client: Any, paths: Any
) -> None:
    app = make_app(load_config(paths.config_file), paths)
    app.router.add_post("/test/full", _disk_full)
    app.router.add_post("/test/ro", _read_only)
    client = await aiohttp_client(app)
    for path, cause in (("/test/full", "disk is full"), ("/test/ro", "read-only")):
        response = await client.post(path)
        assert response.status == 503
        error = (await response.json())["error"]
        assert error["code"] == "unavailable" and cause in error["message"]


@pytest.mark.slow
def test_a_stream_cut_by_a_dying_daemon_says_so(daemon_env: DaemonHandle) -> None:  # noqa: F811
    model = StallingModel()
    model.start()
    daemon_env.env.update(
        LOCALRESEARCH_LLM__PROVIDER="openai",
        LOCALRESEARCH_LLM__BASE_URL=model.url,
        LOCALRESEARCH_LLM__MODEL="stall",
    )
    try:
        daemon_env.start()
        pid = daemon_env.pid()
        assert pid is not None
        ask = subprocess.Popen(
            [sys.executable, "-m", "localresearch", "ask", "--no-memory", "hello"],
            env=daemon_env.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not model.started and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the first chunk is on its way to the CLI
        os.kill(pid, signal.SIGKILL)
        out, err = ask.communicate(timeout=30)
        assert ask.returncode == 1, out + err
        assert "the daemon stopped" in err
        assert "Traceback" not in err and "IncompleteRead" not in err
    finally:
        daemon_env.stop()
        model.stop()
