"""Signs of life while a model thinks: `ask`/`chat` show a spinner with the seconds since the
question left, `deep` shows the step it is on with its time, and a timeout names the setting to
raise (against a loopback server that is slow to answer at all)."""

from __future__ import annotations

import time

import pytest
from rich.console import Console

from localresearch.cli.ask import Waiting
from localresearch.cli.deep import DimensionRow, JobView
from localresearch.errors import ProviderError
from localresearch.events import Event
from localresearch.providers.base import ChatRequest, Message, ProviderOptions
from localresearch.providers.ollama import OllamaProvider
from localresearch.providers.openai import OpenAIProvider
from tests.fakes.servers import FakeServer, Reply, ollama_stream


def _render(renderable: object) -> str:
    console = Console(width=100, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_spinner_counts_the_seconds_until_the_first_token() -> None:
    waiting = Waiting()
    waiting.started = time.monotonic() - 3.4
    first = _render(waiting)
    assert "Thinking… 3." in first
    waiting.started -= 60
    assert "Thinking… 63." in _render(waiting)


def test_deep_shows_the_step_it_is_on_and_for_how_long() -> None:
    view = JobView("res_1")
    view.started = time.monotonic() - 75
    steps = []
    for kind, data in [
        ("scope_started", {}),
        ("scope_complete", {"dimensions": ["Pruning", "Disease"]}),
        ("dimension_started", {"dimension": "Pruning"}),
        ("dimension_complete", {"dimension": "Pruning", "sourceCount": 2, "keyFinding": "x"}),
        ("evaluate_started", {"iteration": 1}),
        ("synthesis_started", {}),
    ]:
        view.apply(Event(kind, data))
        steps.append(view.current_step())
    assert steps[0] == "Scoping the question… 75 s"
    assert steps[2].startswith("Researching dimensions (0/2 done): Pruning… 7")
    assert steps[3].startswith("Researching dimensions (1/2 done)…")
    assert steps[4].startswith("Looking for gaps (round 1)…")
    assert steps[5].startswith("Writing the report…")
    view.dimensions["Disease"] = DimensionRow("Disease")
    assert "Writing the report… 7" in _render(view.render(100))  # under the progress table


async def test_timeouts_name_the_setting_to_raise(fake_server: FakeServer) -> None:
    request = ChatRequest(messages=[Message("user", "hi")])
    # No response at all (headers included) within first_token_timeout.
    fake_server.queue("/api/chat", Reply(chunks=ollama_stream(["late"]), delay=2.0))
    options = ProviderOptions(base_url=fake_server.url, first_token_timeout=0.3, max_retries=0)
    slow = OllamaProvider(options)
    with pytest.raises(ProviderError) as raised:
        [item async for item in slow.stream(request)]
    await slow.close()
    assert "within 0.3 s (first_token_timeout)" in raised.value.message
    assert "raise llm.first_token_timeout in config.toml" in raised.value.message
    # The model list is governed by connect_timeout (plus a margin), and says so.
    fake_server.queue("/v1/models", Reply(chunks=[b"{}"], delay=3.0))
    lister = OpenAIProvider(
        ProviderOptions(base_url=fake_server.url, connect_timeout=-18.0, max_retries=0)
    )
    with pytest.raises(ProviderError) as listed:
        await lister.list_models()
    await lister.close()
    assert "(connect_timeout)" in listed.value.message
    assert "raise llm.connect_timeout" in listed.value.message
