"""Embedding providers side by side in one run: indexing speed, query latency, peak memory.

Each provider gets a real daemon (temp home) that indexes the same first `--docs` SciFact
abstracts through POST /api/memory/reindex (which returns once every vector is stored), then
answers `--queries` searches through GET /api/memory/search. Runs alternate between providers
(`--rounds`), so that a busy machine weighs on both alike; medians are printed.

    .venv/bin/python scripts/bench_embeddings.py --dataset ../shared/datasets/scifact --docs 300 \\
        --provider onnx:~/.local/share/localresearch/models/bge-small \\
        --provider local:/tmp/bge-small-torch@/tmp/torch-venv/bin/python

`provider:model[@python][~revision]`: `local` (sentence-transformers) needs torch, so its daemon
can run in another virtual environment's interpreter (with localresearch installed there);
`~revision` runs the daemon on the package as committed at that git revision (old code against
new, same run); `none:` is BM25 alone. `--docs-corpus` indexes this repository's docs/ (as at
DOCS_EVAL_AT, if set) and judges it with the docs corpus's queries instead of SciFact.
`--relevant` indexes the abstracts judged for the test queries (plus `--docs` others) and
reports nDCG@10 / recall@100 of the test queries on that smaller corpus (higher than on the
full corpus: fewer distractors), for a same-run comparison of providers.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
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

ROOT = Path(__file__).resolve().parent.parent
Judge = Callable[[list[dict[str, object]]], dict[str, float]]


def package_at(revision: str, tmp: Path) -> str:
    """The `localresearch` package as committed at `revision`, unpacked: a daemon started in
    this folder (`python -m localresearch`) imports it before the installed one."""
    folder = tmp / f"code-{revision}"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision, "localresearch"],
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
    return str(folder)


def run_one(
    spec: str, docs: Path, home: Path, queries: dict[str, str], judge: Judge, tmp: Path
) -> dict[str, float]:
    spec, _, revision = spec.partition("~")
    provider, _, rest = spec.partition(":")
    model, _, python = rest.partition("@")
    env = embeddings_env(provider, str(Path(model).expanduser()), 0.8, 0.55) if model else {}
    code = package_at(revision, tmp) if revision else ""
    with Daemon(home, env, python, cwd=code) as daemon:
        cpu = daemon.cpu_seconds()
        seconds, report = daemon.index(docs)
        cpu = daemon.cpu_seconds() - cpu
        stats = daemon.call("GET", "/api/memory/stats")
        vectors = (stats.get("embeddings") or {}).get("vectors", 0)
        hits = {qid: daemon.search(text, 200)[1]["results"] for qid, text in queries.items()}
        latencies = [daemon.search(text, 10)[0] for text in queries.values()]
        rss = daemon.peak_rss_mb()
    metrics = judge(hits) if queries else {"ndcg@10": 0.0, "recall@100": 0.0}
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


def label(spec: str) -> str:
    """The spec without its interpreter: provider:model[~revision]."""
    head, _, revision = spec.partition("~")
    return head.split("@")[0] + (f"~{revision}" if revision else "")


def scifact(
    args: argparse.Namespace, docs: Path
) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    """The SciFact abstracts to index, written to `docs`; the test qrels and their queries."""
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
    write_corpus(corpus, docs)
    print(f"corpus: {len(corpus)} abstracts, {len(chunks_of(docs))} chunks;"
          f" {len(qrels)} test queries")  # fmt: skip
    return qrels, {qid: queries[qid] for qid in qrels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, help="a BEIR folder (SciFact)")
    parser.add_argument("--docs", type=int, default=300, help="first N abstracts of the corpus")
    parser.add_argument(
        "--relevant",
        action="store_true",
        help="the abstracts judged for the test queries, plus --docs others (nDCG on that set)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternating runs per provider")
    parser.add_argument(
        "--provider", action="append", required=True, help="provider:model[@python][~revision]"
    )
    parser.add_argument(
        "--docs-corpus", action="store_true", help="docs/ and its judged queries, not SciFact"
    )
    args = parser.parse_args()
    if not args.docs_corpus and args.dataset is None:
        parser.error("give --dataset (a BEIR folder) or --docs-corpus")
    with tempfile.TemporaryDirectory(prefix="bench-embeddings-") as tmp:
        if args.docs_corpus:
            import judge_memory as judged

            docs = judged.DOCS
            qrels = load_qrels(judged.DOCS_EVAL / "qrels" / "test.tsv")
            queries = {q["_id"]: q["text"] for q in load_jsonl(judged.DOCS_EVAL / "queries.jsonl")}

            def judge(hits: dict[str, list[dict[str, object]]]) -> dict[str, float]:
                return evaluate({qid: judged.to_section_run([(str(h["file"]), str(h["heading"]),
                                 float(str(h["score"]))) for h in found])
                                 for qid, found in hits.items()}, qrels)  # fmt: skip

            print(f"corpus: {docs}; {len(queries)} judged queries")
        else:
            docs = Path(tmp) / "docs"
            qrels, queries = scifact(args, docs)

            def judge(hits: dict[str, list[dict[str, object]]]) -> dict[str, float]:
                return evaluate({qid: to_run(found) for qid, found in hits.items()}, qrels)

        results: dict[str, list[dict[str, float]]] = {spec: [] for spec in args.provider}
        for number in range(args.rounds):
            for index, spec in enumerate(args.provider):
                home = Path(tmp) / f"home-{number}-{index}"
                result = run_one(spec, docs, home, queries, judge, Path(tmp))
                results[spec].append(result)
                print(f"{label(spec)} round {number + 1}: " + ", ".join(
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
                f"{label(spec)}: nDCG@10 {med['ndcg@10']:.4f}, recall@100"
                f" {med['recall@100']:.4f}; {med['chunks_per_s']:.2f} chunks/s ({ratio:.2f}x"
                f" {label(base)}), {med['cpu_ms_per_chunk']:.0f} CPU-ms per chunk"
                f" ({cpu_ratio:.2f}x fewer), search p50 {med['p50_ms']:.1f} ms p99"
                f" {med['p99_ms']:.1f} ms through HTTP, peak RSS {med['rss_mb']:.0f} MB"
            )


if __name__ == "__main__":
    main()
