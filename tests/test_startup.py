"""Start-up: the server answers /health while the core starts; a core that cannot start is
reported on every route that needs it; a failed `daemon start` leaves no process behind."""

from __future__ import annotations

import asyncio
import sqlite3

import psutil
import pytest

from localresearch.config import load_config
from localresearch.paths import Paths
from localresearch.server.app import make_app
from localresearch.server.keys import RUNTIME
from tests.daemon_fixture import DaemonHandle


async def test_health_answers_while_the_core_is_starting(aiohttp_client, paths: Paths):  # type: ignore[no-untyped-def]
    paths.ensure()
    # Another program holds the database exclusively: the core's start waits on the lock.
    blocker = sqlite3.connect(paths.database, isolation_level=None)
    blocker.execute("CREATE TABLE held (x)")
    blocker.execute("BEGIN EXCLUSIVE")
    app = make_app(load_config(paths.config_file), paths)
    client = await aiohttp_client(app)
    try:
        health = await client.get("/health")
        assert health.status == 200 and await health.json() == {"status": "ok"}
        status = await client.get("/api/status")
        assert status.status == 200 and (await status.json())["memory"] is None
        stats = asyncio.ensure_future(client.get("/api/memory/stats"))
        await asyncio.sleep(0.3)
        assert not stats.done(), "a route that needs the core waits for it, it does not fail"
        assert not app[RUNTIME].started
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    response = await asyncio.wait_for(stats, 30)
    assert response.status == 200
    assert (await response.json())["index"]["chunks"] >= 0
    assert app[RUNTIME].started


async def test_a_core_that_cannot_start_is_a_503(aiohttp_client, paths: Paths):  # type: ignore[no-untyped-def]
    paths.ensure()
    paths.database.mkdir(parents=True)  # a directory where the database file should be
    app = make_app(load_config(paths.config_file), paths)
    client = await aiohttp_client(app)
    assert (await client.get("/health")).status == 200
    for method, path in (("GET", "/api/memory/stats"), ("POST", "/api/sessions")):
        response = await client.request(method, path)
        body = await response.json()
        assert response.status == 503, body
        assert body["error"]["code"] == "unavailable"
        assert "failed to start" in body["error"]["message"]
        assert "research daemon logs" in body["error"]["message"]
    status = await client.get("/api/status")
    assert status.status == 200 and (await status.json())["memory"] is None


def _processes_in(home: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("LOCALRESEARCH_HOME") == home:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


@pytest.mark.parametrize("failure", ["bad config", "port in use"])
def test_a_failed_start_leaves_no_process_behind(daemon_env: DaemonHandle, failure: str) -> None:
    import socket

    with socket.socket() as blocker:
        if failure == "bad config":
            (daemon_env.home / "config.toml").write_text("[server]\nbind = 127\n")
        else:
            blocker.bind(("127.0.0.1", daemon_env.port))
            blocker.listen()
        result = daemon_env.cli("daemon", "start")
    assert result.returncode in (1, 2), result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert daemon_env.pid() is None
    # The forked child (it imports the server while the parent checks) was killed and reaped.
    assert _processes_in(str(daemon_env.home)) == []
