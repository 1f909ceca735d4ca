"""Fixtures for the fakes, loaded as a pytest plugin from tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakes.llamacpp_server import llamacpp_server
from tests.fakes.queued_provider import QueuedProvider, install, uninstall
from tests.fakes.realmodel import realmodel_server
from tests.fakes.servers import FakeServer

__all__ = ["fake_server", "llamacpp_server", "queued", "realmodel_server"]


@pytest.fixture
def queued() -> Iterator[type[QueuedProvider]]:
    """The queued fake provider, registered as `queued`; configure `[llm] provider = "queued"`."""
    cls = install()
    yield cls
    uninstall()


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeServer]:
    """A loopback server speaking a cloud API's wire format from scripted replies."""
    server = FakeServer()
    await server.start()
    yield server
    await server.close()
