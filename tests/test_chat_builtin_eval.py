"""How well the builtin engine answers questions about this repository's own docs/ (the README's
main job), on the real memory index: the right file is cited and the answer holds the key fact."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from localresearch.config import Config
from localresearch.memory.service import MemoryService
from localresearch.paths import Paths
from localresearch.providers.builtin import SEARCH_LIMIT, ExtractiveAnswer, compose_answer, retrieve
from localresearch.store import Database

DOCS = Path(__file__).resolve().parent.parent / "docs"

# (question, file that should be cited, a phrase the answer should contain): real questions a
# user of this project asks; the phrases are facts the docs state, not whole sentences.
CASES: list[tuple[str, str, str]] = [
    ("How do I run the daemon under systemd?", "guide.md", "systemctl --user"),
    ("How do I install localresearch?", "guide.md", "pip install"),
    ("How can I override a config setting with an environment variable?", "configuration.md",
     "LOCALRESEARCH_<SECTION>__<KEY>"),
    ("What does the error envelope of the HTTP API look like?", "api.md", '"code"'),
    ("Which events does a deep research stream send?", "api.md", "dimension_source"),
    ("How do I resume a deep research event stream after a disconnect?", "api.md",
     "Last-Event-ID"),
    ("What is the format of a task in HEARTBEAT.md?", "heartbeat.md", "## Pending"),
    ("How do I add a folder of notes to memory?", "", "research memory add"),
    ("How do I give a provider its API key?", "", "api_key_env"),
    ("What happens when a provider returns 429?", "providers.md", "Retry-After"),
    ("How do I write my own provider plugin?", "providers.md", "localresearch.providers"),
    ("Which file types does the memory index read?", "memory.md", "PDF"),
    ("How large are memory chunks?", "memory.md", "1200"),
    ("How do I cancel an answer in research chat?", "chat.md", "Ctrl-C"),
    ("Where is the config file stored?", "", "config.toml"),
]  # fmt: skip


def _memory_config(config: Config) -> Config:
    return dataclasses.replace(config, memory=dataclasses.replace(config.memory, watch=False))


@pytest.fixture
async def docs_memory(config: Config, paths: Paths) -> AsyncIterator[MemoryService]:
    db = Database(paths.database)
    await asyncio.to_thread(db.open)
    memory = MemoryService(_memory_config(config), paths, db)
    await memory.start()
    await memory.wait_ready()
    await memory.add_source(str(DOCS))
    await memory.reindex()
    yield memory
    await memory.stop()
    await asyncio.to_thread(db.close)


async def _answer(memory: MemoryService, question: str) -> ExtractiveAnswer:
    hits = await retrieve(memory, question, SEARCH_LIMIT)
    return await asyncio.to_thread(compose_answer, question, hits)


def _hit(answer: ExtractiveAnswer, file: str, phrase: str) -> bool:
    cited = {Path(c.file).name for c in answer.citations}
    return phrase in answer.text and (not file or file in cited)


async def test_builtin_answers_questions_about_its_own_docs(docs_memory: MemoryService) -> None:
    misses = []
    for question, file, phrase in CASES:
        answer = await _answer(docs_memory, question)
        if not _hit(answer, file, phrase):
            misses.append(f"{question!r} (want {phrase!r} from {file or 'any file'})")
    # 12 of 15 today; the misses are retrieval's (the passage holding the answer is not among
    # the hits), which this engine cannot make up for.
    assert len(misses) <= 3, "\n".join(misses)


_MARKUP = re.compile(r"[`*_|>#\[\]()]")


def _plain_words(text: str) -> list[str]:
    return _MARKUP.sub(" ", text).split()


async def test_every_quote_is_verbatim_and_answers_are_deterministic(
    docs_memory: MemoryService,
) -> None:
    for question, _, _ in CASES:
        answer = await _answer(docs_memory, question)
        assert answer == await _answer(docs_memory, question)
        assert len(answer.text) < 4000  # a sensible length, not the whole section
        for c in answer.citations:
            lines = (DOCS / c.file).read_text(encoding="utf-8").splitlines()
            span = "\n".join(lines[c.line_start - 1 : c.line_end])
            assert f"[{c.n}]" in answer.text
            if c.text.startswith(("```", "~~~", "|")):
                # a code block or table: exactly the file's lines (fences included), shown whole
                assert span.endswith(c.text), (question, c)
                assert c.text in answer.text
            else:
                # a sentence: the same words in the same order (Markdown markers aside)
                words, source = _plain_words(c.text), " ".join(_plain_words(span))
                assert " ".join(words) in source, (question, c)


async def test_readme_main_job_shows_the_unit_file_and_commands(
    docs_memory: MemoryService,
) -> None:
    answer = await _answer(docs_memory, "How do I run the daemon under systemd?")
    text = answer.text
    assert "```ini\n[Unit]\n" in text and "WantedBy=default.target\n```" in text
    assert "systemctl --user daemon-reload && systemctl --user enable --now localresearch" in text
    assert "`~/.config/systemd/user/localresearch.service`:" in text  # the block's lead-in
    assert "launchd" in text  # and the prose around it
    guide = (DOCS / "guide.md").read_text(encoding="utf-8").splitlines()
    unit = next(c for c in answer.citations if "[Unit]" in c.text)
    assert unit.file == "guide.md"
    assert guide[unit.line_start - 1].endswith("localresearch.service`:")
    assert guide[unit.line_end - 1] == "```"
    # the code comes before the prose that follows it in the guide, as in the file
    assert text.index("[Unit]") < text.index("systemctl") < text.index("launchd")
