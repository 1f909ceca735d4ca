"""A real corpus for research tests: a subset of SciFact written as Markdown files, indexed by
the real memory service."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from localresearch.config import load_config
from localresearch.paths import Paths
from localresearch.runtime import Runtime

SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "scifact"
QUESTION = "How does vitamin B12 deficiency affect homocysteine levels in the blood?"


def scifact_available() -> bool:
    return (SCIFACT / "corpus.jsonl").exists()


def _relevant_ids(queries: int) -> set[str]:
    lines = (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]
    wanted: set[str] = set()
    seen_queries: set[str] = set()
    for line in lines:
        query_id, corpus_id, _ = line.split("\t")
        seen_queries.add(query_id)
        if len(seen_queries) > queries:
            break
        wanted.add(corpus_id)
    return wanted


def write_notes(dest: Path, notes: dict[str, str]) -> Path:
    """Write a folder of notes (relative name → text) for a test corpus; returns the folder."""
    for name, text in notes.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_text(text, encoding="utf-8")
    return dest


def write_corpus(dest: Path, *, extra: int = 120, queries: int = 40, full: bool = False) -> int:
    """Write the documents relevant to the first `queries` test claims plus `extra` others
    (or every document with `full`); one Markdown file per abstract. Returns how many."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = _relevant_ids(queries)
    written = 0
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        for number, line in enumerate(fh):
            doc = json.loads(line)
            if not (full or number < extra or doc["_id"] in wanted):
                continue
            body = f"# {doc['title'].strip()}\n\n{doc['text'].strip()}\n"
            (dest / f"{doc['_id']}.md").write_text(body, encoding="utf-8")
            written += 1
    return written


def research_config(corpus: Path, **research: object) -> str:
    """config.toml text: memory indexes `corpus` once (no watcher), research settings given."""
    lines = ["[memory]", f"paths = [{json.dumps(str(corpus))}]", "watch = false", "", "[research]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in research.items()]
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def scifact_runtime(config_text: str, paths: Paths) -> AsyncIterator[Runtime]:
    """A started Runtime over `config_text` (written to the config file), memory indexed."""
    paths.config_file.write_text(config_text, encoding="utf-8")
    rt = Runtime(load_config(paths.config_file), paths)
    await rt.start()
    try:
        assert rt.memory is not None
        await rt.memory.wait_ready()
        yield rt
    finally:
        await rt.stop()
