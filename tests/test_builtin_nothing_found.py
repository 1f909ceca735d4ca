"""The builtin engine says it found nothing, plainly, when the notes hold nothing the question is
about: over the real app, its own statement is not a claim (nor flagged unsupported), and
passages that share only a common word with the question ("run") are no answer."""

from __future__ import annotations

from typing import Any

from localresearch.extractive import holds_topic, split_sentences, terms
from localresearch.paths import Paths
from localresearch.providers.builtin import without_greeting
from tests.fakes.apps import notes_client

NOTES = {
    "sqlite-wal.md": """# SQLite WAL mode

WAL mode allows readers to keep reading while one writer writes.
A long-running reader can stop the checkpoint from completing.
Run `PRAGMA wal_checkpoint(TRUNCATE);` to shrink the WAL after a big import.
""",
    "sourdough.md": """# Sourdough problems

A dense, gummy crumb usually means under-fermentation: let the bulk ferment run longer.
A flat loaf that spreads out is often over-proofed.
""",
    "fts5.md": """# Full-text search

The porter tokenizer stems English words so that "running" matches "run".
""",
    "dns.md": """# DNS at home

The Raspberry Pi runs Pi-hole as the DNS server for the whole network.
""",
}


async def _client(make_client: Any, paths: Paths) -> Any:
    return await notes_client(make_client, paths, NOTES)


async def _ask(client: Any, message: str, **extra: Any) -> dict[str, Any]:
    resp = await client.post("/api/chat", json={"message": message, **extra})
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def test_nothing_found_is_the_engines_own_statement_not_a_claim(
    make_client: Any, paths: Paths
) -> None:
    client = await _client(make_client, paths)
    for message, extra in [
        ("How do I repot an orchid?", {}),
        ("hello", {"include_memory": False}),
        ("???", {}),
    ]:
        body = await _ask(client, message, **extra)
        assert body["citations"] == []
        assert body["sentences"], message
        for sentence in body["sentences"]:
            assert sentence["claim"] is False, (message, sentence)
            assert sentence["supported"] is True, (message, sentence)
        assert body["evidence"] is None


async def test_passages_sharing_only_a_common_word_are_no_answer(
    make_client: Any, paths: Paths
) -> None:
    client = await _client(make_client, paths)
    body = await _ask(client, "How do I run the daemon under systemd?")
    assert body["response"].startswith("I found nothing in your notes about"), body["response"]
    assert body["citations"] == []
    assert [s["claim"] for s in body["sentences"]] == [False]
    # The same notes still answer what they are about, through the same common word.
    body = await _ask(client, "How do I run a WAL checkpoint?")
    assert "wal_checkpoint" in body["response"]
    assert body["citations"][0]["file"] == "notes/sqlite-wal.md"


def test_holds_topic_weighs_the_questions_rarer_words() -> None:
    sentences = [s for text in NOTES.values() for s in split_sentences(text)]
    texts = list(NOTES.values())
    # Only "run" is held: the rarer "daemon" and "systemd" are in no note.
    assert not holds_topic("How do I run the daemon under systemd?", sentences, texts)
    # Two of its words held, one rarer not ("strategy"): still about what the notes hold.
    assert holds_topic("sqlite wal strategy", sentences, texts)
    # A question of one word is held by any text holding it.
    assert holds_topic("Where is the checkpoint?", sentences, texts)
    assert not holds_topic("orchid", sentences, texts)


def test_contractions_are_not_terms() -> None:
    assert terms("What's the router's model? Don't guess.") == ["router", "model", "guess"]


async def test_a_greeting_is_greeted_and_never_looked_up(make_client: Any, paths: Paths) -> None:
    client = await _client(make_client, paths)
    body = await _ask(client, "hi there!")
    assert body["response"].startswith("Hello! Ask me about your notes"), body["response"]
    assert body["citations"] == [] and body["evidence"] is None
    # A greeting before a question is courtesy: the question is answered from the notes.
    body = await _ask(client, "Hello! What about the WAL checkpoint?")
    assert "checkpoint" in body["response"] and "found nothing" not in body["response"]
    assert body["citations"][0]["file"] == "notes/sqlite-wal.md"
    # "hello world" is a topic, not a greeting.
    assert without_greeting("hello world program") == ("hello world program", False)
