"""A research job on a real llama.cpp server (tiny random-weight model): its replies are never
valid JSON, and the job still completes through repair, retry and the builtin fallback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localresearch.server.keys import RUNTIME
from tests.fakes.llamacpp_server import unavailable_reason
from tests.fakes.search_scifact import QUESTION, research_config, scifact_available, write_corpus

pytestmark = [
    pytest.mark.llamacpp,
    pytest.mark.slow,  # ~9 s: a real server, ~16 model calls
    pytest.mark.skipif(
        unavailable_reason() is not None or not scifact_available(),
        reason=unavailable_reason() or "needs ../shared/datasets/scifact",
    ),
]


async def test_job_survives_a_model_that_never_returns_json(
    llamacpp_server: str, tmp_path: Path, write_config: Callable[[str], Path], make_client: Any
) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, extra=30, queries=10)
    text = research_config(corpus, dimensions=2, max_rounds=1, sources_per_dimension=3)
    text += f'\n[llm]\nprovider = "openai"\nbase_url = "{llamacpp_server}"\nmodel = "tiny"\n'
    text += "max_tokens = 48\ntemperature = 0.0\n"
    write_config(text)
    client = await make_client()
    runtime = client.app[RUNTIME]
    await runtime.memory.wait_ready()
    started = await (await client.post("/api/research/deep", json={"query": QUESTION})).json()
    job = await runtime.jobs.wait(started["researchId"])
    assert job.status == "complete", job.error
    usage = await runtime.jobs.usage(job.id)
    assert usage["scope"]["calls"] == 3 and usage["scope"]["fallbacks"] == 1
    assert usage["scope"]["completion_tokens"] > 0  # real token counts from the server
    assert usage["synthesis"]["calls"] == 1
    saved = await runtime.jobs.store.report(job.id)
    assert saved is not None and "## Sources" in saved.markdown
    events = await runtime.jobs.store.events(job.id)
    assert events[-1].type == "done" and len(events[1].data["dimensions"]) == 2
