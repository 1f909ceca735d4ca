"""Embedding providers side by side in one run: indexing speed, query latency, peak memory.

Each provider gets a real daemon (temp home) that indexes the same first `--docs` SciFact
abstracts through POST /api/memory/reindex (which returns once every vector is stored), then
answers `--queries` searches through GET /api/memory/search. Runs alternate between providers
(`--rounds`), so that a busy machine weighs on both alike; medians are printed.

    .venv/bin/python scripts/bench_embeddings.py --dataset ../shared/datasets/scifact --docs 300 \\
        --provider onnx:~/.local/share/localresearch/models/bge-small \\
        --provider local:/tmp/bge-small-torch@/tmp/torch-venv/bin/python

`provider:model[@python]`: `local` (sentence-transformers) needs torch, so its daemon can run
in another virtual environment's interpreter (with localresearch installed there); `none:`
is BM25 alone. `--relevant` indexes the abstracts judged for the test queries (plus `--docs`
others) and reports nDCG@10 / recall@100 of the test queries on that smaller corpus (higher
than on the full corpus: fewer distractors), for a same-run comparison of providers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_memory import (
    Daemon,
    chunks_of,
    embeddings_env,
    evaluate,
    load_jsonl,
    load_qrels,
    percentile,
    to_run,
    write_corpus,
)


def run_one(
    spec: str, docs: Path, home: Path, queries: dict[str, str], qrels: dict[str, dict[str, int]]
) -> dict[str, float]:
    provider, _, rest = spec.partition(":")
    model, _, python = rest.partition("@")
    env = embeddings_env(provider, str(Path(model).expanduser()), 0.8, 0.55) if model else {}
    with Daemon(home, env, python) as daemon:
        cpu = daemon.cpu_seconds()
        seconds, report = daemon.index(docs)
        cpu = daemon.cpu_seconds() - cpu
        stats = daemon.call("GET", "/api/memory/stats")
        vectors = (stats.get("embeddings") or {}).get("vectors", 0)
        run = {qid: to_run(daemon.search(queries[qid], 200)[1]["results"]) for qid in qrels}
        latencies = [daemon.search(queries[qid], 10)[0] for qid in qrels]
        rss = daemon.peak_rss_mb()
    metrics = evaluate(run, qrels) if qrels else {"ndcg@10": 0.0, "recall@100": 0.0}
    return {
        "seconds": seconds,
        "chunks": report["chunks_added"],
        "vectors": vectors,
        "chunks_per_s": report["chunks_added"] / seconds,
        "cpu_ms_per_chunk": 1000 * cpu / max(report["chunks_added"], 1),
        "ndcg@10": metrics["ndcg@10"],
        "recall@100": metrics["recall@100"],
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "rss_mb": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--docs", type=int, default=300, help="first N abstracts of the corpus")
    parser.add_argument(
        "--relevant",
        action="store_true",
        help="the abstracts judged for the test queries, plus --docs others (nDCG on that set)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternating runs per provider")
    parser.add_argument("--provider", action="append", required=True, help="provider:model[@py]")
    args = parser.parse_args()
    corpus = load_jsonl(args.dataset / "corpus.jsonl")
    qrels = load_qrels(args.dataset / "qrels" / "test.tsv")
    queries = {q["_id"]: q["text"] for q in load_jsonl(args.dataset / "queries.jsonl")}
    if args.relevant:
        judged = {doc for docs in qrels.values() for doc in docs}
        others = [d for d in corpus if d["_id"] not in judged][: args.docs]
        corpus = [d for d in corpus if d["_id"] in judged] + others
    else:
        corpus = corpus[: args.docs]
        kept = {d["_id"] for d in corpus}
        qrels = {q: r for q, r in qrels.items() if set(r) & kept}
    with tempfile.TemporaryDirectory(prefix="bench-embeddings-") as tmp:
        docs = Path(tmp) / "docs"
        write_corpus(corpus, docs)
        print(f"corpus: {len(corpus)} abstracts, {len(chunks_of(docs))} chunks;"
              f" {len(qrels)} test queries")  # fmt: skip
        results: dict[str, list[dict[str, float]]] = {spec: [] for spec in args.provider}
        for number in range(args.rounds):
            for spec in args.provider:
                result = run_one(spec, docs, Path(tmp) / f"home-{number}-{len(results[spec])}"
                                 f"-{args.provider.index(spec)}", queries, qrels)  # fmt: skip
                results[spec].append(result)
                print(f"{spec.split('@')[0]} round {number + 1}: " + ", ".join(
                    f"{k} {v:.2f}" for k, v in result.items()), flush=True)  # fmt: skip
        # Ratios against the last provider that made vectors (BM25 alone has no rate to share).
        embedding = [spec for spec in args.provider if results[spec][0]["vectors"] > 0]
        base = (embedding or args.provider)[-1]
        for spec in args.provider:
            med = {k: statistics.median(r[k] for r in results[spec]) for k in results[spec][0]}
            ratio = med["chunks_per_s"] / statistics.median(
                r["chunks_per_s"] for r in results[base]
            )
            cpu_ratio = statistics.median(r["cpu_ms_per_chunk"] for r in results[base]) / max(
                med["cpu_ms_per_chunk"], 1e-9
            )
            print(
                f"{spec.split('@')[0]}: nDCG@10 {med['ndcg@10']:.4f}, recall@100"
                f" {med['recall@100']:.4f}; {med['chunks_per_s']:.2f} chunks/s ({ratio:.2f}x"
                f" {base.split('@')[0]}), {med['cpu_ms_per_chunk']:.0f} CPU-ms per chunk"
                f" ({cpu_ratio:.2f}x fewer), search p50 {med['p50_ms']:.1f} ms p99"
                f" {med['p99_ms']:.1f} ms through HTTP, peak RSS {med['rss_mb']:.0f} MB"
            )


if __name__ == "__main__":
    main()
