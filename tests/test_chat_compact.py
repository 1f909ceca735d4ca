"""A small model's answer over OpenAI's wire format: with `llm.context_tokens` small, the passages
go beside the question under a short instruction and no tools are offered; the answer's sources
lead with the strongest passage it cites, whichever sentence cites it first."""

from __future__ import annotations

from typing import Any

from localresearch.paths import Paths
from tests.fakes.apps import notes_client
from tests.fakes.servers import FakeServer, Reply, openai_stream

# Two notes the question finds, the second weaker (it holds fewer of the question's words).
WAL = "# WAL\n\nSQLite WAL mode lets readers run while one writer appends to the log.\n"
VACUUM = "# Vacuum\n\nSQLite VACUUM rebuilds the database file and returns free pages.\n"
QUESTION = "What does SQLite WAL mode let readers do?"


async def _client(make_client: Any, paths: Paths, server: FakeServer, extra: str = "") -> Any:
    text = f'[llm]\nprovider = "openai"\nbase_url = "{server.url}/v1"\nmodel = "small"\n{extra}'
    return await notes_client(make_client, paths, {"wal.md": WAL, "vacuum.md": VACUUM}, text)


def _numbered(server: FakeServer, file: str) -> int:
    """The number the prompt gave a note's passage (sources are numbered by search rank)."""
    body = server.requests[-1].body
    text = "\n".join(m["content"] for m in body["messages"])
    content = {"notes/wal.md": WAL, "notes/vacuum.md": VACUUM}[file].split("\n\n")[1].strip()
    before = text[: text.index(content)]
    return int(before[before.rindex("[") + 1 : before.rindex("]")])


async def test_a_small_context_gets_the_compact_prompt_and_no_tools(
    make_client: Any, paths: Paths, fake_server: FakeServer
) -> None:
    fake_server.queue(
        "/v1/chat/completions",
        Reply(chunks=openai_stream(["Readers run while one writer appends [1]."])),
    )
    client = await _client(make_client, paths, fake_server, "context_tokens = 4096\n")
    done = await (await client.post("/api/chat", json={"message": QUESTION})).json()
    body = fake_server.requests[-1].body
    assert "tools" not in body  # the passages are already there: nothing to call
    system, user = body["messages"]
    assert system["role"] == "system" and "Sources" not in system["content"]
    # The sources stand beside the question, numbered, without file names to copy.
    assert user["role"] == "user" and user["content"].startswith("Sources:\n\n[1] ")
    assert QUESTION in user["content"] and "notes/wal.md" not in user["content"]
    assert user["content"].index("[1] ") < user["content"].index(QUESTION)
    assert done["citations"] and done["sentences"][0]["supported"] is True


async def test_an_unknown_context_keeps_the_full_prompt_and_the_tools(
    make_client: Any, paths: Paths, fake_server: FakeServer
) -> None:
    fake_server.queue(
        "/v1/chat/completions",
        Reply(chunks=openai_stream(["Readers run while one writer appends [1]."])),
    )
    client = await _client(make_client, paths, fake_server)
    await client.post("/api/chat", json={"message": QUESTION})
    body = fake_server.requests[-1].body
    assert body["tools"] and body["messages"][0]["role"] == "system"
    assert "Sources" in body["messages"][0]["content"]
    assert "notes/wal.md" in body["messages"][0]["content"]
    assert body["messages"][-1]["content"] == QUESTION


async def test_the_first_citation_is_the_strongest_passage_cited(
    make_client: Any, paths: Paths, fake_server: FakeServer
) -> None:
    # The model's first sentence uses the weaker passage, its second the stronger one.
    fake_server.queue("/v1/chat/completions", Reply(chunks=openai_stream(["Thinking."])))
    client = await _client(make_client, paths, fake_server, "context_tokens = 4096\n")
    await client.post("/api/chat", json={"message": QUESTION})
    wal, vacuum = _numbered(fake_server, "notes/wal.md"), _numbered(fake_server, "notes/vacuum.md")
    assert wal < vacuum  # the search ranks the note that holds the question's words first
    answer = (
        f"VACUUM rebuilds the database file and returns free pages [{vacuum}]. "
        f"In WAL mode readers run while one writer appends to the log [{wal}]. "
        "The moon is made of green cheese."
    )
    fake_server.queue("/v1/chat/completions", Reply(chunks=openai_stream([answer])))
    done = await (await client.post("/api/chat", json={"message": QUESTION})).json()
    # What the reader checks first is the strongest evidence: the sources list leads with it.
    assert [c["file"] for c in done["citations"]] == ["notes/wal.md", "notes/vacuum.md"]
    assert [c["n"] for c in done["citations"]] == [wal, vacuum]
    # The sentences keep their own markers, and the unsupported one stays flagged.
    assert [(s["citations"], s["supported"]) for s in done["sentences"]] == [
        ([vacuum], True),
        ([wal], True),
        ([], False),
    ]
    assert done["response"].startswith("VACUUM rebuilds the database file and returns free")
