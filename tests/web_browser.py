"""Browser tests' shared parts: Chromium through Playwright, real daemons, small helpers.

A pytest plugin (listed in conftest.py): the `browser` and `page` fixtures skip when Playwright
or the system Chromium is missing; browser downloads are never attempted."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_fixture import DaemonHandle

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_daemon(home: Path, config: str, **env: str) -> DaemonHandle:
    """A daemon (not started) in `home` with `config` as its config.toml, on a free port."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(config, encoding="utf-8")
    port = _free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOCALRESEARCH_")}
    base.update(
        LOCALRESEARCH_HOME=str(home),
        LOCALRESEARCH_SERVER__PORT=str(port),
        LOCALRESEARCH_SERVER__SHUTDOWN_TIMEOUT="5",
        PYTHONUNBUFFERED="1",
        **env,
    )
    return DaemonHandle(home=home, port=port, env=base)


def api(daemon: DaemonHandle, path: str, method: str = "GET", key: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(f"{daemon.url}{path}", method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def docs_screenshot(page: Any, name: str, **options: Any) -> None:
    """With UPDATE_DOCS_IMAGES=1, also save the screenshot the guide shows (docs/images)."""
    if os.environ.get("UPDATE_DOCS_IMAGES") == "1":
        page.screenshot(path=str(DOCS_IMAGES / name), **options)


def stop(daemon: DaemonHandle) -> None:
    daemon.stop()
    pid = daemon.pid()
    if pid is not None:
        try:
            os.kill(pid, 9)
        except OSError:
            pass


def wait(predicate: Any, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for the module's tests (skips without Playwright or Chromium)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context; the test fails on any uncaught error in the page."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(30_000)
    yield tab
    context.close()
    assert errors == []
