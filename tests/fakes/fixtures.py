"""Fixtures for the fakes, loaded as a pytest plugin from tests/conftest.py."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from localresearch.paths import Paths
from localresearch.runtime import Runtime
from tests.fakes.llamacpp_server import llamacpp_server
from tests.fakes.queued_provider import QueuedProvider, install, uninstall
from tests.fakes.realmodel import realmodel_server
from tests.fakes.servers import FakeServer

__all__ = [
    "fake_server",
    "llamacpp_server",
    "queued",
    "realmodel_server",
    "scifact_jobs_runtime",
    "topics_runtime",
]


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


@contextlib.asynccontextmanager
async def queued_runtime(paths: Paths, config: str) -> AsyncIterator[Runtime]:
    """A started core on `config` with the queued fake as its model, its index ready."""
    from tests.fakes.search_scifact import scifact_runtime

    async with scifact_runtime(config + '\n[llm]\nprovider = "queued"\n', paths) as rt:
        yield rt


@pytest.fixture
async def scifact_jobs_runtime(tmp_path: Path, paths: Paths) -> AsyncIterator[Runtime]:
    """A started core over the SciFact test corpus on the builtin engine: jobs of 3
    dimensions and 1 gap round."""
    from tests.fakes.search_scifact import research_config, scifact_runtime, write_corpus

    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    async with scifact_runtime(research_config(corpus, dimensions=3, max_rounds=1), paths) as rt:
        yield rt


@pytest.fixture
async def topics_runtime(
    tmp_path: Path,
    paths: Paths,
    queued: type[QueuedProvider],
) -> AsyncIterator[Runtime]:
    """A started core over the multi-topic notes (tests/test_research_topics.py), its model the
    queued fake: 2 dimensions, no gap rounds, one dimension at a time."""
    from tests.fakes.search_scifact import research_config, write_notes
    from tests.test_research_topics import NOTES

    notes = write_notes(tmp_path / "notes", NOTES)
    text = research_config(notes, dimensions=2, max_rounds=0, dimension_concurrency=1)
    async with queued_runtime(paths, text) as rt:
        yield rt
