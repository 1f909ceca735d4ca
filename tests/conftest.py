"""Shared fixtures: every test gets its own LOCALRESEARCH_HOME with a real SQLite file."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from localresearch.config import Config, load_config
from localresearch.paths import Paths, resolve_paths

pytest_plugins = ["tests.daemon_fixture", "tests.fakes.fixtures", "tests.web_browser"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolate every test from the user's files and from each other."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("LOCALRESEARCH_HOME", str(root))
    for name in list(__import__("os").environ):
        if name.startswith("LOCALRESEARCH_") and "__" in name:
            monkeypatch.delenv(name)
    return root


@pytest.fixture
def paths(home: Path) -> Paths:
    p = resolve_paths()
    p.ensure()
    return p


@pytest.fixture
def write_config(paths: Paths) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        paths.config_file.write_text(text, encoding="utf-8")
        return paths.config_file

    return write


@pytest.fixture
def config(paths: Paths) -> Config:
    return load_config(paths.config_file)


@pytest.fixture
def make_client(aiohttp_client, paths: Paths):  # type: ignore[no-untyped-def]
    """Build the real app (runtime included) for a config and return a test client."""
    from localresearch.server.app import make_app
    from localresearch.server.keys import RUNTIME

    async def make(cfg: Config | None = None, **kwargs):  # type: ignore[no-untyped-def]
        cfg = cfg or load_config(paths.config_file)
        app = make_app(cfg, paths, port=kwargs.pop("port", None))
        # As the daemon runs (server/run.py): a client that hangs up cancels its handler.
        kwargs.setdefault("server_kwargs", {"handler_cancellation": True})
        client = await aiohttp_client(app, **kwargs)
        await app[RUNTIME].wait_started()  # tests reach into the core right away
        return client

    return make


@pytest.fixture
def port() -> Iterator[int]:
    yield free_port()
