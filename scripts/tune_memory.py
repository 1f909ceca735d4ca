"""Ranking grids for the memory index, run in-process on SciFact (`bench_memory.py --tune`).

Both grids work on an in-memory FTS5 table of the indexer's own chunks, with the service's query
parser and planner, so a configuration costs seconds. Choices are made on `qrels/train.tsv`;
test is printed beside it, never used to choose.

- length prior: BM25 times (chunk chars / 1000) ** exponent, re-scored over the top 2 x limit.
- fusion (with `--vectors FILE`): BM25 (with the chosen prior) and cosine similarity of the
  local model's vectors (all-MiniLM-L6-v2, or `--embeddings-model PATH`), fused by reciprocal
  rank fusion or by a convex combination of normalised scores (BM25 / its best; cosine rescaled
  from a floor to its best). The vectors of every chunk and query are computed once
  (sentence-transformers, the `embeddings-local` extra; MiniLM ~20 min on one CPU core,
  bge-small ~1 h) and cached in FILE (.npz): one file per model.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_memory import Qrels, doc_chunks, evaluate, load_jsonl, load_qrels, write_corpus

from localresearch.memory import query as memory_query
from localresearch.memory.embeddings import combine, fuse
from localresearch.memory.rerank import LENGTH_PIVOT_CHARS
from localresearch.memory.schema import TOKENIZER

Ranked = list[tuple[int, float]]  # (chunk rowid, score), best first


class Grid:
    """SciFact's chunks in an in-memory FTS5 table, and the train/test queries."""

    def __init__(self, dataset: Path, work: Path) -> None:
        corpus = load_jsonl(dataset / "corpus.jsonl")
        self.queries = {q["_id"]: q["text"] for q in load_jsonl(dataset / "queries.jsonl")}
        self.splits: dict[str, Qrels] = {
            s: load_qrels(dataset / "qrels" / f"{s}.tsv") for s in ("train", "test")
        }
        write_corpus(corpus, work / "docs")
        pairs = doc_chunks(work / "docs")
        self.docs = [doc for doc, _ in pairs]
        self.texts = [f"{c.heading}\n{c.content}" if c.heading else c.content for _, c in pairs]
        self.chars = [len(c.heading) + len(c.content) for _, c in pairs]
        self.conn = sqlite3.connect(":memory:")
        self.conn.execute(
            f"CREATE VIRTUAL TABLE f USING fts5(heading, content, tokenize='{TOKENIZER}')"
        )
        self.conn.executemany(
            "INSERT INTO f (rowid, heading, content) VALUES (?, ?, ?)",
            [(i + 1, c.heading, c.content) for i, (_, c) in enumerate(pairs)],
        )
        self.df: dict[str, int] = {}

    def bm25(self, text: str, depth: int) -> Ranked:
        """The service's plan: candidates by rare terms (5%), scored on all terms."""
        terms = memory_query.parse_terms(text)
        for term in terms:
            if term not in self.df:
                sql = "SELECT count(*) FROM f WHERE f MATCH ?"
                self.df[term] = int(self.conn.execute(sql, (term,)).fetchone()[0])
        total = len(self.docs)
        scored = memory_query.by_budget(terms, self.df, 10_000, total)
        cands = memory_query.by_budget(scored, self.df, 1_000, 0.05 * total)
        if not scored:
            return []
        rows = self.conn.execute(
            "SELECT rowid, bm25(f) AS s FROM f WHERE f MATCH ? AND +rowid IN"
            " (SELECT rowid FROM f WHERE f MATCH ?) ORDER BY s LIMIT ?",
            (" OR ".join(scored), " OR ".join(cands), depth),
        ).fetchall()
        return [(int(r), -float(s)) for r, s in rows]

    def prior(self, ranked: Ranked, exponent: float) -> Ranked:
        out = [(r, s * (self.chars[r - 1] / LENGTH_PIVOT_CHARS) ** exponent) for r, s in ranked]
        return sorted(out, key=lambda item: -item[1])

    def score(self, rank: Callable[[str], Ranked]) -> str:
        """nDCG@10 on train and test; a document scores as its best chunk."""
        parts = []
        for split, qrels in self.splits.items():
            run: dict[str, dict[str, float]] = {}
            for qid in qrels:
                best: dict[str, float] = {}
                for rowid, value in rank(qid):
                    best.setdefault(self.docs[rowid - 1], value)
                    if len(best) >= 100:
                        break
                run[qid] = best
            parts.append(f"{split} {evaluate(run, qrels)['ndcg@10']:.4f}")
        return "  ".join(parts)


def length_grid(grid: Grid, limit: int = 10) -> None:
    print("length prior exponent | window | nDCG@10")
    cache = {qid: grid.bm25(text, 200) for qid, text in grid.queries.items()}
    for exponent in (0.0, 0.05, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3):
        for window in (limit, 2 * limit):

            def rank(qid: str, e: float = exponent, w: int = window) -> Ranked:
                ranked = cache[qid]
                return grid.prior(ranked[:w], e) + ranked[w:]

            print(f"{exponent:5.3f} | {window:3d} | {grid.score(rank)}")


def _vectors(grid: Grid, path: Path, model_path: str = "") -> tuple[Any, dict[str, Any]]:
    import numpy as np

    if not path.exists():
        from sentence_transformers import SentenceTransformer

        from localresearch.memory.embeddings import _default_local_model

        model = SentenceTransformer(model_path or _default_local_model(), device="cpu")
        started = time.perf_counter()
        qids = list(grid.queries)
        qv = model.encode([grid.queries[q] for q in qids], normalize_embeddings=True)
        cv = model.encode(grid.texts, batch_size=32, normalize_embeddings=True)
        np.savez(path, qids=np.array(qids), qv=qv, cv=cv, cdoc=np.array(grid.docs))
        print(f"embedded {len(grid.texts)} chunks in {time.perf_counter() - started:.0f} s")
    data = np.load(path)
    if list(data["cdoc"]) != grid.docs:
        raise SystemExit(f"{path} holds other chunks: delete it to embed again")
    return data["cv"], dict(zip(data["qids"], data["qv"], strict=True))


def fusion_grid(grid: Grid, vectors: Path, exponent: float, model: str = "") -> None:
    import numpy as np

    chunks, queries = _vectors(grid, vectors, model)
    for depth in (100, 200, 400):
        lexical = {q: grid.prior(grid.bm25(t, depth), exponent) for q, t in grid.queries.items()}
        dense: dict[str, Ranked] = {}
        for qid, vector in queries.items():
            sims = chunks @ vector
            best = np.argpartition(-sims, depth)[:depth]
            dense[qid] = [(int(i) + 1, float(sims[i])) for i in best[np.argsort(-sims[best])]]
        _fusions(grid, f"depth {depth}:", lexical, dense)


def _fusions(grid: Grid, label: str, lexical: dict[str, Ranked], dense: dict[str, Ranked]) -> None:
    print(f"{label} BM25 alone {grid.score(lambda q: lexical[q])}")
    print(f"{label} vectors alone {grid.score(lambda q: dense[q])}")
    for k in (10, 60):

        def rrf(qid: str, k: int = k) -> Ranked:
            return fuse([[r for r, _ in lexical[qid]], [r for r, _ in dense[qid]]], k)

        print(f"{label} RRF k={k} {grid.score(rrf)}")
    # Floors up to 0.7: models differ in what unrelated texts score (MiniLM ~0.1-0.3, bge-small
    # ~0.4-0.6); bge-small's best weight is 0.8 (0.95 and 1.0 lost on train, as did floor 0.75).
    for floor in (0.0, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7):
        for weight in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9):

            def convex(qid: str, w: float = weight, f: float = floor) -> Ranked:
                return combine(lexical[qid], dense[qid], w, f)

            result = grid.score(convex)
            print(f"{label} convex, cosine floor {floor}, vector weight {weight}: {result}")


def tune_ranking(
    dataset: Path, work: Path, vectors: Path | None, exponent: float, model: str = ""
) -> None:
    grid = Grid(dataset, work)
    length_grid(grid)
    if vectors is not None:
        fusion_grid(grid, vectors, exponent, model)
