"""A second corpus for the memory ranking, and the judging of ranking parameters on both.

The corpus is this repository's own docs/ (short technical sections, Markdown headings, code:
statistics unlike SciFact's abstracts), with written relevance judgements per section in
scripts/data/docs_eval (BEIR layout; a document id is `file#section title`). Run from
bench_memory.py:

    .venv/bin/python scripts/bench_memory.py --docs-eval     # daemon vs raw FTS5, both corpora
    .venv/bin/python scripts/bench_memory.py --judge --dataset ../shared/datasets/scifact
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localresearch.memory import query as memory_query
from localresearch.memory import ranking
from localresearch.memory.chunking import HEADING_SEPARATOR, Chunk
from localresearch.memory.grams import grams_of
from localresearch.memory.schema import TOKENIZER
from localresearch.store.database import connect

ROOT = Path(__file__).resolve().parents[1]
# The corpus grows with every edit of docs/, so figures compare within a run only; with
# DOCS_EVAL_AT=<git revision> every script judges docs/ as it was at that revision instead.
DOCS_AT = os.environ.get("DOCS_EVAL_AT", "")


def _docs_at(revision: str) -> Path:
    """docs/ as committed at `revision`, unpacked once into the temp folder."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{revision}^{{commit}}"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    folder = Path(tempfile.gettempdir()) / f"docs-eval-{commit[:12]}"
    if not (folder / "docs").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit, "docs"], check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
    return (folder / "docs").resolve()


DOCS = _docs_at(DOCS_AT) if DOCS_AT else ROOT / "docs"
DOCS_EVAL = ROOT / "scripts" / "data" / "docs_eval"
Run = dict[str, dict[str, float]]


def section_id(file: str, heading: str) -> str:
    """The judged unit of the docs corpus: a file's section, by its own title."""
    return f"{Path(file).name}#{heading.split(HEADING_SEPARATOR)[-1] if heading else ''}"


def to_section_run(hits: list[tuple[str, str, float]], depth: int = 100) -> dict[str, float]:
    """Best chunk per section: (file, heading, score) best first → section id → score."""
    scores: dict[str, float] = {}
    for file, heading, score in hits:
        scores.setdefault(section_id(file, heading), score)
    return dict(list(scores.items())[:depth])


def held_rows(db_path: Path) -> list[tuple[int, str, str, str, str]]:
    """Every row of a daemon's notes index as it holds it: (chunk id, file, heading, content,
    grams). Besides the corpus, that is the workspace's own MEMORY.md (every home has one)."""
    conn = sqlite3.connect(db_path)
    try:
        sql = """SELECT t.rowid, f.path, t.heading, t.content, t.grams FROM memory_fts AS t
                 JOIN memory_chunks AS c ON c.id = t.rowid
                 JOIN memory_files AS f ON f.id = c.file_id ORDER BY t.rowid"""
        return [(int(r[0]), r[1], r[2], r[3], r[4]) for r in conn.execute(sql)]
    finally:
        conn.close()


def raw_fts_run(
    rows: list[tuple[int, str, str, str, str]],
    queries: dict[str, str],
    work: Path,
    to_run: Callable[[list[tuple[str, str, float]]], dict[str, float]] = to_section_run,
) -> Run:
    """The baseline: the daemon's rows (held_rows) in a plain FTS5 table of the same columns,
    the daemon's query terms OR-ed, every match ranked by FTS5's own rank (bm25() with equal
    column weights, the daemon's too). Only the daemon's query plan differs."""
    path = work / "raw_held.db"
    path.unlink(missing_ok=True)
    conn = connect(path)
    conn.execute(
        f"CREATE VIRTUAL TABLE raw USING fts5(heading, content, grams, tokenize='{TOKENIZER}')"
    )
    conn.executemany(
        "INSERT INTO raw (rowid, heading, content, grams) VALUES (?, ?, ?, ?)",
        [(chunk_id, heading, content, grams) for chunk_id, _, heading, content, grams in rows],
    )
    conn.commit()
    where = {chunk_id: (file, heading) for chunk_id, file, heading, _, _ in rows}
    run: Run = {}
    for qid, text in queries.items():
        match = " OR ".join(memory_query.parse_terms(text))
        sql = "SELECT rowid, rank FROM raw WHERE raw MATCH ? ORDER BY rank LIMIT 200"
        found = conn.execute(sql, (match,)).fetchall()
        run[qid] = to_run([(*where[chunk_id], -rank) for chunk_id, rank in found])
    conn.close()
    return run


def docs_chunks() -> list[tuple[str, Chunk]]:
    """The chunks the indexer makes of docs/, each with its file."""
    from localresearch.memory.prepare import prepare_file

    chunks: list[tuple[str, Chunk]] = []
    for path in sorted(DOCS.glob("*.md")):
        _, made = prepare_file(str(path), None, 1200, 150)
        assert isinstance(made, list)
        chunks.extend((path.name, chunk) for chunk in made)
    return chunks


def index_size_cost(chunks: list[Chunk], work: Path) -> tuple[int, int]:
    """Bytes of an FTS5 table of the chunks without and with the `grams` column (filled as the
    indexer fills it: empty unless a chunk holds an unspaced script)."""
    sizes = []
    for with_grams in (False, True):
        path = work / f"size_{int(with_grams)}.db"
        path.unlink(missing_ok=True)
        conn = connect(path)
        columns = "heading, content, grams" if with_grams else "heading, content"
        conn.execute(f"CREATE VIRTUAL TABLE t USING fts5({columns}, tokenize='{TOKENIZER}')")
        if with_grams:
            rows: list[tuple[str, ...]] = [
                (c.heading, c.content, grams_of(c.heading + " " + c.content)) for c in chunks
            ]
            conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        else:
            conn.executemany(
                "INSERT INTO t VALUES (?, ?)", [(c.heading, c.content) for c in chunks]
            )
        conn.commit()
        conn.execute("INSERT INTO t(t) VALUES ('optimize')")
        conn.commit()
        conn.execute("VACUUM")
        conn.close()
        sizes.append(os.path.getsize(path))
    return sizes[0], sizes[1]


# -- judging parameters in-process, on the daemon's own search code --------------------------


@contextmanager
def variant(weights: tuple[float, ...], widen: float) -> Iterator[None]:
    saved = ranking.WEIGHTS, ranking.WIDEN_ROWS
    ranking.WEIGHTS, ranking.WIDEN_ROWS = weights, widen
    try:
        yield
    finally:
        ranking.WEIGHTS, ranking.WIDEN_ROWS = saved


async def _service(home: Path, folder: Path) -> Any:
    os.environ["LOCALRESEARCH_HOME"] = str(home)
    from localresearch.config import load_config
    from localresearch.memory.service import MemoryService
    from localresearch.paths import resolve_paths
    from localresearch.store import Database

    paths = resolve_paths()
    paths.ensure()
    config = load_config(paths.config_file)
    config = dataclasses.replace(config, memory=dataclasses.replace(config.memory, watch=False))
    db = Database(paths.database)
    db.open()
    memory = MemoryService(config, paths, db)
    await memory.start()
    await memory.wait_ready()
    if folder not in [source.path for source in await memory.sources()]:
        await memory.add_source(str(folder))
    await memory.reindex()
    await asyncio.to_thread(memory.indexer.compact)
    return memory


Variant = tuple[str, tuple[float, ...], float, float | None]  # label, weights, widen, prior


def default_variants() -> list[Variant]:
    return [
        ("shipped", ranking.WEIGHTS, ranking.WIDEN_ROWS, None),
        ("heading weight 0.5", (0.5, 1.0, 1.0), ranking.WIDEN_ROWS, None),
        ("heading weight 2", (2.0, 1.0, 1.0), ranking.WIDEN_ROWS, None),
        ("heading weight 4", (4.0, 1.0, 1.0), ranking.WIDEN_ROWS, None),
        ("no widening (rare-term candidates only)", ranking.WEIGHTS, -1.0, None),
        ("unbounded widening (exact)", ranking.WEIGHTS, float("inf"), None),
        *[
            (f"length prior {prior}", ranking.WEIGHTS, ranking.WIDEN_ROWS, prior)
            for prior in (0.0, 0.05, 0.1, 0.15)
        ],
    ]


async def judge(
    corpora: list[tuple[str, Path, dict[str, str], Any, Callable[[Any], dict[str, float]]]],
    work: Path,
    variants: list[Variant] | None = None,
) -> None:
    """nDCG@10 and median search time of each parameter variant on every corpus."""
    from bench_memory import evaluate

    variants = variants or default_variants()
    for name, folder, queries, qrels, to_run in corpora:
        memory = await _service(work / f"home-{name}", folder)
        shipped_prior = memory.config.memory.length_prior
        print(f"-- {name}: {len(queries)} judged queries")
        for label, weights, widen, prior in variants:
            memory.config = dataclasses.replace(
                memory.config,
                memory=dataclasses.replace(
                    memory.config.memory,
                    length_prior=shipped_prior if prior is None else prior,
                ),
            )
            run: Run = {}
            times: list[float] = []
            with variant(weights, widen):
                for qid, text in queries.items():
                    started = time.perf_counter()
                    await memory.search(text, 10)
                    times.append(time.perf_counter() - started)
                    run[qid] = to_run(await memory.search(text, 200))
            ndcg = evaluate(run, qrels)["ndcg@10"]
            print(
                f"{label:42s} nDCG@10 {ndcg:.4f}"
                f"  search p50 {statistics.median(times) * 1000:.2f} ms (in-process)"
            )
        await memory.stop()
        await asyncio.to_thread(memory.db.close)


# -- fusion weights on the docs corpus (the onnx model must be installed in the home) ---------

FUSION_GRID = [(0.0, 0.55), (0.45, 0.25), (0.6, 0.55), (0.7, 0.55), (0.8, 0.4), (0.8, 0.5)]
FUSION_GRID += [(0.8, 0.55), (0.8, 0.6), (0.9, 0.55), (1.0, 0.55)]


async def judge_fusion(home: Path, work: Path) -> None:
    """nDCG@10 of the docs corpus per (vector weight, similarity floor), BM25 alone first;
    `home` has an embedding model configured (`research memory embeddings install bge-small`)."""
    from bench_memory import evaluate, load_jsonl, load_qrels

    queries = {q["_id"]: q["text"] for q in load_jsonl(DOCS_EVAL / "queries.jsonl")}
    qrels = load_qrels(DOCS_EVAL / "qrels" / "test.tsv")
    memory = await _service(home, DOCS)
    embedder = memory.embedder
    assert embedder is not None, "no embedding model configured in this home"
    started = time.perf_counter()

    def notes(conn: Any) -> int:  # the daemon's own HEARTBEAT.md is not embedded
        return int(
            conn.execute("SELECT count(*) FROM memory_chunks WHERE kind = 'note'").fetchone()[0]
        )

    while True:
        stats = await memory.embedding_stats()
        chunks = await memory.db.read(notes)
        if stats and stats["vectors"] >= chunks:
            break
        await asyncio.sleep(1.0)
    print(
        f"docs corpus: {chunks} vectors ({embedder.name}) in {time.perf_counter() - started:.0f} s"
    )
    embeddings = memory.config.memory.embeddings
    rows = [("BM25 alone", None)] + [(f"w {w}, floor {f}", (w, f)) for w, f in FUSION_GRID]
    for label, setting in rows:
        if setting is None:
            memory.embedder = None
        else:
            memory.embedder = embedder
            weight, floor = setting
            memory.config = dataclasses.replace(
                memory.config,
                memory=dataclasses.replace(
                    memory.config.memory,
                    embeddings=dataclasses.replace(
                        embeddings, vector_weight=weight, similarity_floor=floor
                    ),
                ),
            )
        run: Run = {}
        for qid, text in queries.items():
            hits = await memory.search(text, 100)
            run[qid] = to_section_run([(h.file, h.heading, h.score) for h in hits])
        scores = evaluate(run, qrels)
        print(f"{label:24s} nDCG@10 {scores['ndcg@10']:.4f}  recall@100 {scores['recall@100']:.4f}")
    memory.embedder = embedder
    await memory.stop()
    await asyncio.to_thread(memory.db.close)
