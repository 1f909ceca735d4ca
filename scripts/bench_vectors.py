"""Vector storage and scoring: what float16 / int8 storage costs in ranking, and scan latency.

    .venv/bin/python scripts/bench_vectors.py --dataset ../shared/datasets/scifact \\
        --model ~/.local/share/localresearch/models/bge-small --docs 300

1. Quality: the first `--docs` SciFact chunks and the test queries are embedded (onnx
   provider, float32); each query's top 10 by cosine with float32 vectors is the reference, and
   the same top 10 from float16 vectors (what the daemon stores) and from int8 with a scale per
   vector is compared with it (recall@10 against float32, and the largest cosine error).
2. Speed: `VectorIndex` (the daemon's class, memory-mapped float32 matrix) over N random unit
   vectors: a full-scan top-200 per query, and the re-scoring of 700 BM25 candidates, which
   the daemon uses above FULL_SCAN_ROWS (rows gathered in file order), against the same
   rows gathered in the candidates' order (the baseline). p50 / p99 over 200 queries.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from bench_memory import doc_chunks, load_jsonl, load_qrels, percentile, write_corpus

from localresearch.memory.onnx_embedder import make_onnx_embedder
from localresearch.memory.vectors import FULL_SCAN_ROWS, VectorIndex


def quantised(cv: Any) -> dict[str, Any]:
    """The chunk vectors as each storage would give them back (float32 for scoring)."""
    f16 = cv.astype(np.float16).astype(np.float32)
    scale = np.abs(cv).max(axis=1, keepdims=True) / 127.0
    int8 = np.round(cv / scale).astype(np.int8).astype(np.float32) * scale
    return {"float16 (2 B/dim)": f16, "int8 + scale (1 B/dim)": int8}


def quality(dataset: Path, model: str, docs: int, work: Path) -> None:
    corpus = load_jsonl(dataset / "corpus.jsonl")[:docs]
    write_corpus(corpus, work / "docs")
    texts = [f"{c.heading}\n{c.content}" if c.heading else c.content
             for _, c in doc_chunks(work / "docs")]  # fmt: skip
    qrels = load_qrels(dataset / "qrels" / "test.tsv")
    queries = {q["_id"]: q["text"] for q in load_jsonl(dataset / "queries.jsonl")}
    qtexts = [queries[q] for q in qrels]
    embedder = make_onnx_embedder(model, 0, 16)
    started = time.perf_counter()
    cv = np.asarray(embedder.embed(texts), dtype=np.float32)
    qv = np.asarray(embedder.embed(qtexts), dtype=np.float32)
    print(f"embedded {len(texts)} chunks and {len(qtexts)} queries in"
          f" {time.perf_counter() - started:.0f} s")  # fmt: skip
    exact = qv @ cv.T
    reference = np.argsort(-exact, axis=1)[:, :10]
    for name, stored in quantised(cv).items():
        scores = qv @ stored.T
        top = np.argsort(-scores, axis=1)[:, :10]
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, reference, strict=True)])
        print(f"{name}: recall@10 against float32 {recall:.4f}, largest cosine error"
              f" {np.abs(scores - exact).max():.5f}")  # fmt: skip


def speed(rows: int, dim: int, work: Path, queries: int = 200) -> None:
    rng = np.random.default_rng(1)
    blobs = []
    for start in range(0, rows, 100_000):
        block = rng.normal(size=(min(100_000, rows - start), dim)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        half = block.astype("<f2")
        blobs.extend(half[i].tobytes() for i in range(len(half)))
    started = time.perf_counter()
    index = VectorIndex(list(range(1, rows + 1)), blobs, dim, work / f"m{rows}.f32")
    load = time.perf_counter() - started
    del blobs
    qs = rng.normal(size=(queries, dim)).astype(np.float32)
    scan: list[float] = []
    rescore: list[float] = []
    unsorted: list[float] = []
    mapped = np.memmap(work / f"m{rows}.f32", dtype=np.float32, mode="r", shape=(rows, dim))
    for q in qs:
        query = q.tolist()
        if rows <= 4 * FULL_SCAN_ROWS:
            t = time.perf_counter()
            index.top(query, 200)
            scan.append(time.perf_counter() - t)
        # Each its own random rows (pages touched first cost more), in alternating order.
        for which in (0, 1) if len(rescore) % 2 else (1, 0):
            candidates = rng.integers(1, rows + 1, size=700).tolist()
            t = time.perf_counter()
            if which:
                index.score(query, candidates)
                rescore.append(time.perf_counter() - t)
            else:  # baseline: a bare gather in the candidates' order and one product
                (mapped[np.asarray(candidates) - 1] @ q).tolist()
                unsorted.append(time.perf_counter() - t)
    line = f"{rows:>9,} x {dim}: load {load:.1f} s"
    if scan:
        line += (f"; full scan top-200 p50 {percentile(scan, 0.5) * 1000:.2f} ms,"
                 f" p99 {percentile(scan, 0.99) * 1000:.2f} ms")  # fmt: skip
    line += (f"; re-score 700 candidates p50 {percentile(rescore, 0.5) * 1000:.2f} ms,"
             f" p99 {percentile(rescore, 0.99) * 1000:.2f} ms"
             f" ({'scan' if index.scans else 'candidates'} in the daemon); baseline, a bare"
             f" gather and product: p50 {percentile(unsorted, 0.5) * 1000:.2f} ms,"
             f" p99 {percentile(unsorted, 0.99) * 1000:.2f} ms;"
             f" load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--model", default="", help="onnx model folder (for the quality part)")
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--scale", default="10000,250000,1000000", help="rows, comma-separated")
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-vectors-") as tmp:
        if args.dataset and args.model:
            quality(args.dataset, str(Path(args.model).expanduser()), args.docs, Path(tmp))
        for rows in (int(r) for r in args.scale.split(",") if r):
            speed(rows, args.dim, Path(tmp))


if __name__ == "__main__":
    main()
