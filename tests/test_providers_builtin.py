"""The extractive machinery, the builtin provider and the provider registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from localresearch.config.schema import LLMConfig
from localresearch.errors import InvalidRequest
from localresearch.extractive import (
    CitationBook,
    cited_numbers,
    code_blocks,
    format_location,
    is_boilerplate,
    query_terms,
    score_sentences,
    select_sentences,
    split_sentences,
    stem,
    verbatim_blocks,
)
from localresearch.memory.types import SearchHit
from localresearch.providers.base import ChatRequest, Citation, Message, TextChunk, Usage
from localresearch.providers.builtin import BuiltinProvider, compose_answer, passages
from localresearch.providers.registry import (
    available_providers,
    create_provider,
    provider_class,
)
from tests.fakes.queued_provider import QueuedProvider

DOC = """# Title

SQLite uses WAL mode. Readers proceed during writes, e.g. while the indexer runs.
Dr. Smith agreed.

- First item here
- Second item. It has two sentences.

```
code. Not prose.
```
Last line.
"""


def test_split_sentences_keeps_lines_and_offsets() -> None:
    sentences = split_sentences(DOC, first_line=10)
    texts = [s.text for s in sentences]
    assert texts == [
        "Title",
        "SQLite uses WAL mode.",
        "Readers proceed during writes, e.g. while the indexer runs.",
        "Dr. Smith agreed.",
        "First item here",
        "Second item.",
        "It has two sentences.",
        "Last line.",
    ]
    assert sentences[0].heading and not sentences[1].heading
    assert [s.line_start for s in sentences] == [10, 12, 12, 13, 15, 16, 16, 21]
    for s in sentences[1:]:
        assert s.text.split()[-1] in DOC[s.start : s.end]
    assert [s.position for s in sentences] == list(range(len(sentences)))


def test_multiline_sentence_spans_its_lines() -> None:
    text = "Intro line.\nThis sentence runs\nover two lines. Next one."
    sentences = split_sentences(text, first_line=5)
    assert [(s.text, s.line_start, s.line_end) for s in sentences] == [
        ("Intro line.", 5, 5),
        ("This sentence runs over two lines.", 6, 7),
        ("Next one.", 7, 7),
    ]


def test_terms_and_stemming() -> None:
    assert stem("indexes") == stem("indexing") == stem("indexed") == "index"
    assert stem("uses") == "use"
    assert query_terms("What do my notes say about the indexes and indexing?") == ["index"]


def test_scoring_prefers_rare_terms_and_selection_drops_repeats() -> None:
    sentences = split_sentences(
        "WAL mode lets readers run. WAL mode lets readers run too. "
        "The writer holds the lock. Readers and the writer coexist in WAL mode."
    )
    scored = score_sentences(sentences, "how do readers and the writer share WAL mode")
    assert scored[0].sentence.text == "Readers and the writer coexist in WAL mode."
    chosen = select_sentences(scored, limit=5)
    texts = [c.sentence.text for c in chosen]
    assert "WAL mode lets readers run." in texts
    assert "WAL mode lets readers run too." not in texts  # near duplicate
    assert scored == score_sentences(sentences, "how do readers and the writer share WAL mode")


def test_citation_book_numbers_once_per_span() -> None:
    book = CitationBook()
    assert book.cite("a.md", 1, 2) == 1
    assert book.cite("b.md", 5, 5) == 2
    assert book.cite("a.md", 1, 2) == 1
    assert [format_location(c) for c in book.citations] == ["a.md:1-2", "b.md:5"]
    assert cited_numbers("x [2] y [1] z [2] [x]") == [2, 1]


def _hit(content: str, line: int = 1, file: str = "notes.md", score: float = 1.0) -> SearchHit:
    lines = content.count("\n")
    return SearchHit(file, f"/w/{file}", content, score, line, line + lines)


def test_compose_answer_orders_and_cites() -> None:
    hits = [
        _hit("Backups run nightly at 2am. The garden is green.", 4, "ops.md"),
        _hit("Restores were tested in May.\nBackups are kept for 30 days.", 10, "policy.md", 0.5),
    ]
    answer = compose_answer("when do backups run and how long are they kept?", hits)
    assert answer.text.startswith("From your notes:")
    assert "Backups run nightly at 2am. [1]" in answer.text
    assert "Backups are kept for 30 days. [2]" in answer.text
    assert "garden" not in answer.text
    assert [(c.file, c.line_start, c.line_end) for c in answer.citations] == [
        ("ops.md", 4, 4),
        ("policy.md", 11, 11),
    ]
    assert compose_answer("when do backups run?", hits) == compose_answer(
        "when do backups run?", hits
    )


def test_compose_answer_says_when_nothing_matches() -> None:
    answer = compose_answer("tell me about quantum chromodynamics", [_hit("Backups run nightly.")])
    assert (
        answer.text == "I found nothing in your notes about “tell me about quantum chromodynamics”."
    )
    assert answer.citations == []
    assert "Ask about a topic" in compose_answer("what is it?", []).text


class _Memory:
    def __init__(self, hits: list[SearchHit]) -> None:
        self.hits = hits
        self.queries: list[str] = []

    async def search(self, query: str, limit: int = 10) -> list[SearchHit]:
        self.queries.append(query)
        return self.hits[:limit]


async def test_builtin_provider_searches_memory_and_streams() -> None:
    memory = _Memory([_hit("The deploy key lives in the vault.", 7, "ops.md")])
    provider = create_provider(LLMConfig(), memory)
    assert isinstance(provider, BuiltinProvider)
    request = ChatRequest(messages=[Message("user", "where is the deploy key?")])
    items = [item async for item in provider.stream(request)]
    # As asked, then every word as a prefix, then (a single passage found: too little) once
    # without each word that passage shares, in case the index's rarest-word filter hid the rest.
    assert memory.queries == ["where is the deploy key?", "deploy* key*", "key*", "deploy*"]
    text = "".join(i.text for i in items if isinstance(i, TextChunk))
    assert "The deploy key lives in the vault. [1]" in text
    assert next(i for i in items if isinstance(i, Citation)).line_start == 7
    assert isinstance(items[-1], Usage) and items[-1].completion_tokens > 0

    request.json_mode = True
    items = [item async for item in provider.stream(request)]
    import json

    obj = json.loads("".join(i.text for i in items if isinstance(i, TextChunk)))
    assert obj["citations"][0]["file"] == "ops.md"


def test_registry_finds_entry_points_and_runtime_registrations(
    queued: type[QueuedProvider],
) -> None:
    names = available_providers()
    assert {"builtin", "openai", "ollama", "anthropic", "llamacpp", "queued"} <= set(names)
    assert provider_class("queued") is QueuedProvider
    assert provider_class("builtin") is BuiltinProvider
    with pytest.raises(InvalidRequest, match="Unknown provider 'nope'"):
        create_provider(LLMConfig(provider="nope"))


def test_key_comes_from_the_named_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LR_TEST_KEY", "sk-from-env")
    provider = create_provider(LLMConfig(provider="openai", api_key_env="LR_TEST_KEY"))
    assert provider.options.api_key == "sk-from-env"
    assert "sk-from-env" not in repr(LLMConfig(provider="openai", api_key_env="LR_TEST_KEY"))


def test_comments_code_and_cut_fences_are_not_prose() -> None:
    cut = "research jobs list --json\nresearch jobs show res_1\n```\n\nJobs survive restarts.\n"
    assert [s.text for s in split_sentences(cut)] == ["Jobs survive restarts."]
    commented = "<!-- a comment\nspanning lines. -->\nReal text here.\n"
    assert [s.text for s in split_sentences(commented)] == ["Real text here."]
    unfenced = "Run it:\n\n--port 8080 --bind 127.0.0.1 /tmp/x.sock\n"
    assert [s.text for s in split_sentences(unfenced)] == ["Run it:"]


def test_relative_floor_drops_the_weak_tail() -> None:
    sentences = split_sentences(
        "Backups run nightly and backups are verified weekly. The backup disk is in the office."
        " Nightly jobs also rotate logs."
    )
    scored = score_sentences(sentences, "how are backups verified nightly")
    everything = select_sentences(scored)
    trimmed = select_sentences(scored, relative_floor=0.5)
    assert len(trimmed) < len(everything)
    assert trimmed[0].sentence.text.startswith("Backups run nightly")


def test_notes_win_over_the_daily_log_that_repeats_them() -> None:
    sentence = "The deploy key lives in the vault."
    hits = [
        _hit(f"## 10:00 Chat: where is the key\n\n{sentence} [1]", 5, "memory/2026-11-25.md"),
        _hit(sentence, 7, "ops.md", 0.9),
    ]
    answer = compose_answer("where is the deploy key?", hits)
    assert [(c.file, c.line_start) for c in answer.citations] == [("ops.md", 7)]


GUIDE = """## Running it

Put this in `~/.config/app.service`:

```ini
[Service]
ExecStart=app serve

Restart=on-failure
```

Then start it:

```bash
systemctl --user enable --now app
```

On macOS, launchd runs the same command.

| event | data |
|---|---|
| `start` | `{}` |
"""


def test_verbatim_blocks_keep_code_tables_and_lead_ins() -> None:
    blocks = verbatim_blocks(GUIDE, first_line=40)
    assert [(b.kind, b.line_start, b.line_end, b.lead_in) for b in blocks] == [
        ("code", 42, 49, "Put this in `~/.config/app.service`:"),
        ("code", 51, 55, "Then start it:"),
        ("table", 59, 61, ""),
    ]
    assert blocks[0].text == "```ini\n[Service]\nExecStart=app serve\n\nRestart=on-failure\n```"
    assert blocks[0].language == "ini" and blocks[0].section == "Running it"
    assert code_blocks(GUIDE) == [b for b in verbatim_blocks(GUIDE) if b.kind == "code"]
    # a passage cut inside a block, or before its end, yields only whole blocks
    assert [b.language for b in code_blocks(GUIDE.split("Restart", 1)[1])] == ["bash"]
    assert [b.language for b in code_blocks(GUIDE.split("systemctl", 1)[0])] == ["ini"]


def test_howto_answers_quote_the_code_and_other_questions_do_not() -> None:
    hit = _hit(GUIDE, 40, "guide.md")
    howto = compose_answer("how do I run the app service with systemctl?", [hit])
    assert "```bash\nsystemctl --user enable --now app\n```" in howto.text
    assert "Then start it: [" in howto.text
    cited = {c.line_start: c for c in howto.citations}
    assert cited[51].line_end == 55 and cited[51].text.startswith("```bash")
    assert "Then start it:" not in howto.text.replace("Then start it: [", "")  # not twice
    plain = compose_answer("does the app service restart on failure?", [hit])
    assert "```" not in plain.text
    assert howto == compose_answer("how do I run the app service with systemctl?", [hit])


def test_boilerplate_is_dropped() -> None:
    toc = "# Guide\n\n- [Install](#install)\n- [Run the daemon](#run)\n\nSee [the daemon](d.md).\n"
    sentences = split_sentences(toc + "The daemon runs in the background.\n")
    kept = [s.text for s in sentences if not is_boilerplate(s)]
    assert kept == ["The daemon runs in the background."]
    table = "| setting | default |\n|---|---|\n| `daemon.port` | 31327 |\n"
    answer = compose_answer("which daemon setting sets the port?", [_hit(table)])
    assert "setting default" not in answer.text  # the header row alone says nothing


def test_passages_are_reanchored_in_their_file(tmp_path: Path) -> None:
    file = tmp_path / "guide.md"
    file.write_text("intro\n\n" + GUIDE, encoding="utf-8")
    # the index may store a chunk with blank lines dropped; the file has the exact lines
    stored = "\n".join(line for line in GUIDE.splitlines() if line.strip())
    hit = SearchHit("guide.md", str(file), stored, 1.0, 3, 3 + GUIDE.count("\n") - 1)
    (passage,) = passages([hit])
    assert passage.text == GUIDE.rstrip("\n")
    answer = compose_answer("how do I run the app service?", [hit])
    assert "ExecStart=app serve\n\nRestart=on-failure" in answer.text
    lines = file.read_text(encoding="utf-8").splitlines()
    for c in answer.citations:
        assert c.text.split()[0] in lines[c.line_start - 1] or c.text in "\n".join(lines)
    file.write_text("changed since it was indexed\n", encoding="utf-8")
    assert passages([hit])[0].text == stored  # the file moved on: keep the stored chunk


def test_a_lead_in_is_the_whole_sentence_above_the_block() -> None:
    text = (
        "Intro sentence. Providers register through the group\n"
        "`localresearch.providers`; built-ins use the same hook:\n\n```toml\n[x]\n```\n"
    )
    (block,) = code_blocks(text, first_line=10)
    assert block.lead_in == (
        "Providers register through the group\n`localresearch.providers`; built-ins use the "
        "same hook:"
    )
    assert (block.line_start, block.line_end) == (10, 15)
