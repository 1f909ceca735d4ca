"""Fixtures for the fakes, loaded as a pytest plugin from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.queued_provider import QueuedProvider, install, uninstall


@pytest.fixture
def queued() -> Iterator[type[QueuedProvider]]:
    """The queued fake provider, registered as `queued`; configure `[llm] provider = "queued"`."""
    cls = install()
    yield cls
    uninstall()
