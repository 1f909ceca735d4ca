"""A model's answer the notes do not back gets what the notes do say, quoted and cited, over the
real app with a loopback server speaking OpenAI's (and llama.cpp's) wire format; the model's
context size comes from llama.cpp's /props when llm.context_tokens is not set."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from localresearch.paths import Paths
from tests.fakes.apps import notes_client
from tests.fakes.servers import (
    FakeServer,
    Reply,
    llamacpp_models,
    llamacpp_props,
    openai_models,
    openai_stream,
)

MODEL = "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"
TEA = "Green tea steeps for two minutes at eighty degrees."
COFFEE = "A pour-over coffee brews for three minutes with water just off the boil."
CHAT = "/v1/chat/completions"
LABEL = "**Quoted from your notes**:"


async def _client(make_client: Any, paths: Paths, url: str, extra: str = "") -> Any:
    text = f'[llm]\nprovider = "openai"\nbase_url = "{url}/v1"\nmodel = "local"\n{extra}'
    notes = {
        "tea.md": f"# Tea\n\n{TEA}\nBlack tea steeps for four minutes in boiling water.\n",
        "coffee.md": f"# Coffee\n\n{COFFEE}\n",
    }
    return await notes_client(make_client, paths, notes, text)


def _sse(raw: str) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in raw.splitlines() if line.startswith("data:")]


def _llamacpp(server: FakeServer) -> None:
    server.queue("/v1/models", llamacpp_models(MODEL, n_ctx=4096))
    server.queue("/props", llamacpp_props(MODEL, n_ctx=4096))


def _numbered(request_body: dict[str, Any]) -> dict[int, str]:
    """The passages of a compact prompt, by the number the model saw."""
    text = request_body["messages"][-1]["content"]
    found = re.findall(r"^\[(\d+)\] (.*?)(?=\n\n\[\d+\] |\n\nQuestion: )", text, flags=re.M | re.S)
    return {int(n): body for n, body in found}


async def test_an_unsupported_answer_gets_the_notes_quoted_strongest_first(
    make_client: Any, paths: Paths, fake_server: FakeServer
) -> None:
    _llamacpp(fake_server)
    # The model restates the question in words no note holds, as a small model does.
    restated = "Green tea strengthens the immune system and prevents colds."
    fake_server.queue(CHAT, Reply(chunks=openai_stream([restated])))
    client = await _client(make_client, paths, fake_server.url)
    resp = await client.post("/api/chat/stream", json={"message": "How long does green tea steep?"})
    events = _sse(await resp.text())
    done = events[-1]["data"]
    assert events[-1]["type"] == "done", events[-1]
    # The context size came from llama.cpp's /props: 4,096 tokens, so the compact prompt.
    paths_seen = [r.path for r in fake_server.requests]
    assert paths_seen == ["/v1/models", "/props", CHAT]
    sent = fake_server.requests[-1].body
    assert "tools" not in sent and TEA in sent["messages"][-1]["content"]
    tea = next(n for n, body in _numbered(sent).items() if "Green tea" in body)

    assert done["evidence"]["reason"] == "unsupported"
    model, *quoted = done["sentences"]
    assert model["text"] == restated
    assert (model["supported"], model["quoted"], model["citations"]) == (False, False, [])
    assert quoted and all(s["quoted"] and s["supported"] and s["citations"] for s in quoted)
    assert quoted[0]["text"] == TEA and quoted[0]["citations"] == [tea]
    # The model's sentence stays as written, the quotes follow under their label, cited.
    assert done["response"].startswith(restated + "\n\n" + LABEL)
    assert f"{TEA} [{tea}]" in done["response"]
    # Citations lead with the strongest passage, its quoted span as the file has it.
    first = done["citations"][0]
    assert first["n"] == tea and first["file"] == "notes/tea.md"
    assert first["text"].startswith(TEA) and first["line_start"] == 3
    assert done["evidence"]["citations"] == list(dict.fromkeys(s["citations"][0] for s in quoted))
    # Streaming clients got the quoted paragraph as a delta too.
    streamed = "".join(e["data"]["text"] for e in events if e["type"] == "delta")
    assert streamed.startswith(restated) and LABEL in streamed

    # The same answer through POST /api/chat carries the same evidence (the size is cached).
    fake_server.queue(CHAT, Reply(chunks=openai_stream([restated])))
    body = await (
        await client.post("/api/chat", json={"message": "How long does green tea steep?"})
    ).json()
    assert body["evidence"] == done["evidence"] and body["sentences"] == done["sentences"]
    assert [r.path for r in fake_server.requests].count("/props") == 1


async def test_an_answer_that_skips_the_strongest_passage_gets_it_quoted_first(
    make_client: Any, paths: Paths, fake_server: FakeServer
) -> None:
    _llamacpp(fake_server)
    question = "How long does green tea steep, and how long does coffee brew?"
    client = await _client(make_client, paths, fake_server.url)
    # A first answer shows how the passages are numbered; pointing at the tea note stands.
    fake_server.queue(CHAT, Reply(chunks=openai_stream(["Noted [1]."])))
    first = await (await client.post("/api/chat", json={"message": question})).json()
    numbered = _numbered(fake_server.requests[-1].body)
    tea = next(n for n, body in numbered.items() if TEA in body)
    coffee = next(n for n, body in numbered.items() if COFFEE in body)
    assert tea == 1 and first["evidence"] is None  # no claim, but it points at the answer
    # The model answers from the coffee note only: supported, but the note that holds more
    # of the question's topic (green tea, steeping: three of its words) is not cited.
    fake_server.queue(CHAT, Reply(chunks=openai_stream([COFFEE])))
    done = await (await client.post("/api/chat", json={"message": question})).json()
    assert done["evidence"]["reason"] == "strongest_uncited"
    model, quote = done["sentences"]
    assert model["supported"] and not model["quoted"] and model["citations"] == [coffee]
    assert quote["quoted"] and quote["citations"] == [tea] and quote["text"] == TEA
    assert [c["n"] for c in done["citations"]] == [tea, coffee]
    assert done["response"] == f"{COFFEE[:-1]} [{coffee}].\n\n{LABEL} {TEA} [{tea}]"


async def test_a_supported_answer_citing_the_strongest_passage_stands_alone(
    make_client: Any, paths: Paths, fake_server: FakeServer
) -> None:
    _llamacpp(fake_server)
    fake_server.queue(CHAT, Reply(chunks=openai_stream([f"{TEA[:-1]} [1]."])))
    client = await _client(make_client, paths, fake_server.url)
    done = await (
        await client.post("/api/chat", json={"message": "How long does green tea steep?"})
    ).json()
    assert TEA in _numbered(fake_server.requests[-1].body)[1]
    assert done["evidence"] is None and LABEL not in done["response"]
    assert done["response"] == f"{TEA[:-1]} [1]."
    assert [s["quoted"] for s in done["sentences"]] == [False]


@pytest.mark.parametrize(
    ("replies", "extra", "probed", "compact"),
    [
        # An older llama.cpp without /props: the model's meta in /v1/models tells n_ctx.
        ([("/v1/models", llamacpp_models(MODEL, n_ctx=2048))], "", ["/v1/models", "/props"], True),
        # Only the training context is told: 32,768 tokens, the full prompt with tools.
        (
            [("/v1/models", llamacpp_models(MODEL, n_ctx=None)), ("/props", Reply(404))],
            "",
            ["/v1/models", "/props"],
            False,
        ),
        # A server that is not llama.cpp (OpenAI, vLLM) is not asked for /props.
        ([("/v1/models", openai_models(["local"]))], "", ["/v1/models"], False),
        # The setting wins: no probe at all.
        ([], "context_tokens = 4096\n", [], True),
        ([], "context_tokens = 32768\n", [], False),
    ],
)
async def test_the_context_size_comes_from_the_setting_or_the_server(
    make_client: Any,
    paths: Paths,
    fake_server: FakeServer,
    replies: list[tuple[str, Reply]],
    extra: str,
    probed: list[str],
    compact: bool,
) -> None:
    for path, reply in replies:
        fake_server.queue(path, reply)
    fake_server.queue(CHAT, Reply(chunks=openai_stream([f"{TEA[:-1]} [1]."])))
    client = await _client(make_client, paths, fake_server.url, extra)
    resp = await client.post("/api/chat", json={"message": "How long does green tea steep?"})
    assert resp.status == 200, await resp.text()
    assert [r.path for r in fake_server.requests] == [*probed, CHAT]
    sent = fake_server.requests[-1].body
    assert ("tools" not in sent) is compact
    assert (TEA in sent["messages"][-1]["content"]) is compact
