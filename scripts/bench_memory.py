"""Benchmark the memory index: quality on a BEIR dataset, speed, and a generated scale run.

    .venv/bin/python scripts/bench_memory.py --dataset ../shared/datasets/scifact
    .venv/bin/python scripts/bench_memory.py --dataset ../shared/datasets/scifact --tune
    .venv/bin/python scripts/bench_memory.py --dataset ../shared/datasets/scifact --tune \
        --vectors /tmp/scifact-minilm.npz   # + the fusion grid (needs sentence-transformers once)
    .venv/bin/python scripts/bench_memory.py --scale-chunks 1000000
    .venv/bin/python scripts/bench_memory.py --docs-eval   # the second corpus: this repo's docs/
    .venv/bin/python scripts/bench_memory.py --dataset ../shared/datasets/scifact --judge
    .venv/bin/python scripts/bench_memory.py --docs-eval --fusion-home HOME  # HOME: a home where
        # `research memory embeddings install bge-small` ran: the fusion grid on the docs corpus

Each corpus document becomes `<_id>.md` (title as the heading). A real daemon (`research daemon
start`, in a temp LOCALRESEARCH_HOME) indexes the folder through POST /api/memory/reindex, and
every query runs through GET /api/memory/search. The raw-FTS5 baselines insert the very same
chunks into a plain FTS5 table in the same run: for indexing speed the corpus's chunks, for
ranking every row the daemon's index holds (read from its database: the corpus and the
workspace's MEMORY.md), so that only the daemon's query plan differs. Metrics: ir-measures
(`pip install -e .[bench]`). DOCS_EVAL_AT=<git revision> judges docs/ as committed then.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localresearch.config.schema import MemoryConfig
from localresearch.memory import query as memory_query
from localresearch.memory.chunking import Chunk, chunk_blocks
from localresearch.memory.extract import extract_blocks
from localresearch.memory.schema import RANK, TOKENIZER
from localresearch.store.database import connect

Qrels = dict[str, dict[str, int]]
DEFAULT_LENGTH_PRIOR = MemoryConfig().length_prior


# -- dataset -------------------------------------------------------------------------------


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh):
            parts = line.rstrip("\n").split("\t")
            if number == 0 and not parts[-1].strip().lstrip("-").isdigit():
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def write_corpus(corpus: list[dict[str, Any]], folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for doc in corpus:
        text = f"# {doc.get('title') or doc['_id']}\n\n{doc.get('text', '')}\n"
        data = text.encode()
        (folder / f"{doc['_id']}.md").write_bytes(data)
        total += len(data)
    return total


def chunks_of(folder: Path) -> list[Chunk]:
    """The very chunks the indexer makes, for the raw baseline and the tuning grid."""
    chunks: list[Chunk] = []
    for path in sorted(folder.iterdir()):
        chunks.extend(chunk_blocks(extract_blocks(path, path.read_bytes())))
    return chunks


def doc_chunks(folder: Path) -> list[tuple[str, Chunk]]:
    out: list[tuple[str, Chunk]] = []
    for path in sorted(folder.iterdir()):
        for chunk in chunk_blocks(extract_blocks(path, path.read_bytes())):
            out.append((path.stem, chunk))
    return out


# -- raw FTS5 baseline ---------------------------------------------------------------------


def raw_fts_insert(chunks: list[Chunk], db_path: Path, batch: int = 4000) -> float:
    """Seconds to insert the chunks into a plain FTS5 table (same tokenizer, same pragmas)."""
    conn = connect(db_path)
    conn.execute(f"CREATE VIRTUAL TABLE raw USING fts5(heading, content, tokenize='{TOKENIZER}')")
    rows = [(c.heading, c.content) for c in chunks]
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO raw (heading, content) VALUES (?, ?)", rows[start : start + batch]
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def raw_fts_query_latency(db_path: Path, texts: list[str], passes: int = 2) -> list[float]:
    """Seconds per query on the raw FTS5 table, in this process (no HTTP): the issue's anchor
    (9.5 ms p50), the daemon's query terms OR-ed, best 10 by FTS5's own BM25 rank."""
    conn = connect(db_path)
    sql = "SELECT rowid, heading, content FROM raw WHERE raw MATCH ? ORDER BY rank LIMIT 10"
    latencies: list[float] = []
    for _ in range(passes):
        for text in texts:
            match = " OR ".join(memory_query.parse_terms(text))
            started = time.perf_counter()
            conn.execute(sql, (match,)).fetchall()
            latencies.append(time.perf_counter() - started)
    conn.close()
    return latencies


# -- the daemon ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    """A real `research daemon` in its own home, with a keep-alive HTTP connection."""

    def __init__(
        self, home: Path, extra_env: dict[str, str] | None = None, python: str = "", cwd: str = ""
    ) -> None:
        self.python = python or sys.executable
        self.cwd = cwd or None  # `python -m` imports the package from here first
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALRESEARCH_")}
        self.env.update(
            LOCALRESEARCH_HOME=str(home),
            LOCALRESEARCH_SERVER__PORT=str(self.port),
            LOCALRESEARCH_HEARTBEAT__ENABLED="false",
            LOCALRESEARCH_MEMORY__WATCH="false",
        )
        self.env.update(extra_env or {})
        self.conn: http.client.HTTPConnection | None = None

    def cli(self, *args: str) -> None:
        cmd = [self.python, "-m", "localresearch", *args]
        subprocess.run(
            cmd, env=self.env, cwd=self.cwd, check=True, capture_output=True, timeout=600
        )

    def __enter__(self) -> Daemon:
        self.cli("daemon", "start")
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3600)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()
        self.cli("daemon", "stop")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        assert self.conn is not None
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:300]!r}")
        return json.loads(raw)

    def index(self, folder: Path) -> tuple[float, dict[str, Any]]:
        """Add the folder and index it now: (seconds of POST /api/memory/reindex, its report)."""
        self.call("POST", "/api/memory/sources", {"path": str(folder)})
        started = time.perf_counter()
        report = self.call("POST", "/api/memory/reindex", {})
        return time.perf_counter() - started, report

    def wait_compacted(self, timeout: float = 1800.0) -> float:
        """Seconds until the background merge after a big pass is over (searches are faster
        after it: timed queries measure the index as it stays)."""
        started = time.perf_counter()
        while self.call("GET", "/api/memory/stats")["index"].get("compacting"):
            if time.perf_counter() - started > timeout:
                raise RuntimeError("the index was still being merged")
            time.sleep(0.05)
        return time.perf_counter() - started

    def peak_rss_mb(self) -> float:
        """The daemon's peak resident memory (VmHWM; Linux), 0 where unknown."""
        pid_file = Path(self.env["LOCALRESEARCH_HOME"]) / "state" / "daemon.pid"
        try:
            pid = json.loads(pid_file.read_text())["pid"]
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except (OSError, KeyError, ValueError):
            pass
        return 0.0

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the daemon has used so far (Linux), 0 where unknown: on a
        shared machine, CPU seconds per chunk compare better than wall-clock rates."""
        pid_file = Path(self.env["LOCALRESEARCH_HOME"]) / "state" / "daemon.pid"
        try:
            pid = json.loads(pid_file.read_text())["pid"]
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, KeyError, ValueError, IndexError):
            return 0.0

    def search(self, query: str, limit: int) -> tuple[float, dict[str, Any]]:
        path = "/api/memory/search?" + urlencode({"q": query, "limit": limit})
        started = time.perf_counter()
        result = self.call("GET", path)
        return time.perf_counter() - started, result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def evaluate(run: dict[str, dict[str, float]], qrels: Qrels) -> dict[str, float]:
    import ir_measures
    from ir_measures import R, nDCG

    measures = ir_measures.calc_aggregate([nDCG @ 10, R @ 100], qrels, run)
    return {"ndcg@10": measures[nDCG @ 10], "recall@100": measures[R @ 100]}


def to_run(results: list[dict[str, Any]]) -> dict[str, float]:
    """Best chunk per document, as doc id → score (a document is one `<_id>.md` file)."""
    scores: dict[str, float] = {}
    for hit in results:
        doc = Path(hit["file"]).stem
        if doc not in scores:
            scores[doc] = float(hit["score"])
    return dict(list(scores.items())[:100])


def embeddings_env(
    provider: str, model: str, weight: float | None = None, floor: float | None = None
) -> dict[str, str]:
    """Daemon settings for `--embeddings` (e.g. local: needs the embeddings-local extra)."""
    if not provider or provider == "none":
        return {}
    env = {"LOCALRESEARCH_MEMORY__EMBEDDINGS__PROVIDER": provider}
    if model:
        env["LOCALRESEARCH_MEMORY__EMBEDDINGS__MODEL"] = model
    if weight is not None:  # per-model fusion settings (docs/memory.md), else the defaults
        env["LOCALRESEARCH_MEMORY__EMBEDDINGS__VECTOR_WEIGHT"] = str(weight)
    if floor is not None:
        env["LOCALRESEARCH_MEMORY__EMBEDDINGS__SIMILARITY_FLOOR"] = str(floor)
    return env


def index_once(
    daemon: Daemon, docs: Path, count: int, mb: float, raw_seconds: float
) -> tuple[float, dict[str, Any]]:
    """Seconds for POST /api/memory/reindex of the folder into an empty daemon index."""
    seconds, report = daemon.index(docs)
    print(
        f"daemon indexing (POST /api/memory/reindex): {seconds:.2f} s ="
        f" {count / seconds:.0f} docs/s, {mb / seconds:.2f} MB/s"
        f" ({raw_seconds / seconds:.2f}x raw); added {report['added']} files,"
        f" {report['chunks_added']} chunks"
    )
    return seconds, report


def bench_dataset(
    dataset: Path,
    work: Path,
    split: str,
    extra_env: dict[str, str] | None = None,
    index_runs: int = 1,
) -> None:
    corpus = load_jsonl(dataset / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in load_jsonl(dataset / "queries.jsonl")}
    qrels = load_qrels(dataset / "qrels" / f"{split}.tsv")
    docs = work / "docs"
    size = write_corpus(corpus, docs)
    chunks = chunks_of(docs)
    mb = size / 1e6
    print(f"corpus: {len(corpus)} docs, {mb:.1f} MB, {len(chunks)} chunks")
    ratios: list[float] = []
    # Raw inserts and the daemon alternate, each into an empty database, `index_runs` times;
    # the last daemon stays up for the queries.
    for number in range(1, index_runs + 1):
        raw_seconds = raw_fts_insert(chunks, work / f"raw{number}.db")
        print(
            f"raw FTS5 inserts (baseline): {raw_seconds:.2f} s ="
            f" {len(corpus) / raw_seconds:.0f} docs/s,"
            f" {mb / raw_seconds:.2f} MB/s"
        )
        daemon = Daemon(work / f"home{number}", extra_env).__enter__()
        seconds, _report = index_once(daemon, docs, len(corpus), mb, raw_seconds)
        ratios.append(raw_seconds / seconds)
        if number < index_runs:
            daemon.__exit__(None, None, None)
    if index_runs > 1:
        print(
            f"indexing vs raw FTS5 over {index_runs} alternating runs: median"
            f" {statistics.median(ratios):.2f}x (min {min(ratios):.2f}x, max {max(ratios):.2f}x)"
        )
    try:
        run: dict[str, dict[str, float]] = {}
        latencies: list[float] = []
        for qid in qrels:
            elapsed, result = daemon.search(queries[qid], 200)
            run[qid] = to_run(result["results"])
        merged = daemon.wait_compacted()
        print(f"segments merged in the background: done {merged:.2f} s after the quality pass")
        short: list[float] = []
        for _ in range(2):
            for qid in qrels:
                elapsed, _result = daemon.search(queries[qid], 10)
                short.append(elapsed)
            latencies = short
        stats = daemon.call("GET", "/api/memory/stats")
        rss = daemon.peak_rss_mb()
    finally:
        daemon.__exit__(None, None, None)
    metrics = evaluate(run, qrels)
    print(f"{split}: nDCG@10 {metrics['ndcg@10']:.4f}, recall@100 {metrics['recall@100']:.4f}")
    import judge_memory as judged

    held = judged.held_rows(work / f"home{index_runs}" / "data" / "localresearch.db")
    texts = {qid: queries[qid] for qid in qrels}

    def doc_run(hits: list[tuple[str, str, float]]) -> dict[str, float]:
        return to_run([{"file": file, "score": score} for file, _, score in hits])

    exact = evaluate(judged.raw_fts_run(held, texts, work, doc_run), qrels)
    print(
        f"baseline, raw FTS5 ranking every match on the daemon's {len(held)} rows (exact"
        f" bm25()): nDCG@10 {exact['ndcg@10']:.4f}, recall@100 {exact['recall@100']:.4f}"
    )
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    print(
        f"query latency through HTTP (limit=10, {len(latencies)} queries):"
        f" p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    )
    raw = raw_fts_query_latency(work / f"raw{index_runs}.db", [queries[qid] for qid in qrels])
    raw50, raw99 = percentile(raw, 0.5) * 1000, percentile(raw, 0.99) * 1000
    print(
        f"baseline, raw FTS5 in-process (words OR-ed, {len(raw)} queries):"
        f" p50 {raw50:.2f} ms, p99 {raw99:.2f} ms; through HTTP / raw p50: {p50 / raw50:.2f}x"
    )
    print(f"database: {stats['index']['database_size_bytes'] / 1e6:.1f} MB")
    print(f"daemon peak RSS: {rss:.0f} MB")
    if stats.get("embeddings"):
        print(f"embeddings: {stats['embeddings']}")


# -- tuning (in-process, same chunks and query parser) ------------------------------------


def tune(dataset: Path, work: Path) -> None:
    """Grid over tokenizer, column weights, stopwords and candidate selection; pick on train.

    Uses the indexer's chunks and the service's query parser and planner (by_budget) on an
    in-memory FTS5 table, so each configuration costs seconds instead of a daemon run.
    """
    corpus = load_jsonl(dataset / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in load_jsonl(dataset / "queries.jsonl")}
    splits = {s: load_qrels(dataset / "qrels" / f"{s}.tsv") for s in ("train", "test")}
    docs = work / "docs"
    write_corpus(corpus, docs)
    rows = [(doc, c.heading, c.content) for doc, c in doc_chunks(docs)]
    conn = sqlite3.connect(":memory:")
    total = len(rows)
    print("tokenizer | weights (heading, content) | stopwords | candidates | nDCG@10 | p50 ms")
    for tokenizer in ("porter unicode61 remove_diacritics 2", "unicode61 remove_diacritics 2"):
        conn.execute("DROP TABLE IF EXISTS f")
        conn.execute(
            f"CREATE VIRTUAL TABLE f USING fts5(doc UNINDEXED, heading, content,"
            f" tokenize='{tokenizer}')"
        )
        conn.executemany("INSERT INTO f VALUES (?, ?, ?)", rows)
        df: dict[str, int] = {}
        for weights in ((0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (4.0, 1.0)):
            bm25 = f"bm25(f, 0, {weights[0]}, {weights[1]})"
            for stop in (False, True):
                for rare in (1.0, 0.05, 0.02):
                    line = []
                    for split, qrels in splits.items():
                        run: dict[str, dict[str, float]] = {}
                        latencies = []
                        for qid in qrels:
                            text = queries[qid]
                            if stop:
                                terms = memory_query.parse_terms(text)
                            else:
                                words = memory_query._WORD.findall(text.lower())
                                terms = list(dict.fromkeys(f'"{w}"' for w in words))
                            for term in terms:
                                if term not in df:
                                    sql = "SELECT count(*) FROM f WHERE f MATCH ?"
                                    df[term] = conn.execute(sql, (term,)).fetchone()[0]
                            started = time.perf_counter()
                            scored = memory_query.by_budget(terms, df, 10_000, total)
                            cands = memory_query.by_budget(scored, df, 1_000, rare * total)
                            found = []
                            if scored and cands == scored:
                                found = conn.execute(
                                    f"SELECT doc, {bm25} AS s FROM f WHERE f MATCH ?"
                                    " ORDER BY s LIMIT 200",
                                    (" OR ".join(scored),),
                                ).fetchall()
                            elif scored:
                                found = conn.execute(
                                    f"SELECT doc, {bm25} AS s FROM f WHERE f MATCH ? AND +rowid"
                                    " IN (SELECT rowid FROM f WHERE f MATCH ?) ORDER BY s"
                                    " LIMIT 200",
                                    (" OR ".join(scored), " OR ".join(cands)),
                                ).fetchall()
                            latencies.append(time.perf_counter() - started)
                            scores: dict[str, float] = {}
                            for doc, score in found:
                                scores.setdefault(doc, -score)
                            run[qid] = scores
                        ndcg = evaluate(run, qrels)["ndcg@10"]
                        p50 = percentile(latencies, 0.5) * 1000
                        line.append(f"{split} {ndcg:.4f} {p50:.1f}")
                    print(f"{tokenizer[:7]} | {weights} | {stop} | {rare} | {' | '.join(line)}")
    print(f"shipped: tokenizer '{TOKENIZER}', rank {RANK}, stopwords on, candidates 0.05")


# -- scale ---------------------------------------------------------------------------------


def _vocabulary(size: int, rng: random.Random) -> list[str]:
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.randint(2, 4)
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables)))
    return sorted(words)


def generate(folder: Path, chunks: int, per_file: int, rng: random.Random) -> list[str]:
    """Files of `per_file` sections of ~60 Zipf-distributed words: one chunk per section."""
    vocab = _vocabulary(50_000, rng)
    weights = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(vocab))))
    folder.mkdir(parents=True, exist_ok=True)
    files = (chunks + per_file - 1) // per_file
    words_needed = 60 * per_file
    for number in range(files):
        sample = rng.choices(vocab, cum_weights=weights, k=words_needed)
        sections = []
        for section in range(per_file):
            body = " ".join(sample[section * 60 : (section + 1) * 60])
            sections.append(f"## Section {section}\n\n{body}\n")
        (folder / f"f{number:07d}.md").write_text(f"# File {number}\n\n" + "\n".join(sections))
    return vocab


def bench_scale(work: Path, chunks: int, queries: int) -> None:
    rng = random.Random(7)
    folder = work / "scale"
    started = time.perf_counter()
    vocab = generate(folder, chunks, 20, rng)
    print(f"scale: generated {chunks} chunks in {time.perf_counter() - started:.0f} s")
    with Daemon(work / "scale-home") as daemon:
        seconds, report = daemon.index(folder)
        print(
            f"scale: indexed {report['added']} files, {report['chunks_added']} chunks in"
            f" {seconds:.1f} s ({report['chunks_added'] / seconds:.0f} chunks/s)"
        )
        texts = [" ".join(rng.sample(vocab[100:20_000], rng.randint(2, 5))) for _ in range(queries)]
        # Right after the pass the segments are still being merged in the background; then as
        # the index stays.
        during = [daemon.search(text, 10)[0] for text in texts]
        merged = daemon.wait_compacted()
        print(f"scale: segments merged in the background, done {merged:.1f} s after those queries")
        after = [daemon.search(text, 10)[0] for text in texts]
        stats = daemon.call("GET", "/api/memory/stats")
    print(f"scale: database {stats['index']['database_size_bytes'] / 1e6:.0f} MB")
    for name, latencies in (("right after the pass (merging)", during), ("merged", after)):
        p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
        print(
            f"scale: {queries} queries through HTTP (limit=10), {name}: p50 {p50:.2f} ms,"
            f" p99 {p99:.2f} ms, mean {statistics.mean(latencies) * 1000:.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dataset", type=Path, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)"
    )
    parser.add_argument("--split", default="test", help="qrels split to report (default: test)")
    parser.add_argument(
        "--tune", action="store_true", help="print the tuning grid (train and test)"
    )
    parser.add_argument(
        "--vectors",
        type=Path,
        help="with --tune: .npz cache of the local model's vectors for the fusion grid (made if"
        " missing; --embeddings-model picks the model)",
    )
    parser.add_argument(
        "--index-runs",
        type=int,
        default=5,
        help="raw and daemon indexing runs, alternating (median ratio printed; 1 with embeddings)",
    )
    parser.add_argument("--scale-chunks", type=int, default=0, help="generated chunks (0: skip)")
    parser.add_argument(
        "--docs-eval",
        action="store_true",
        help="the second corpus (docs/, judged in scripts/data/docs_eval): daemon vs raw FTS5",
    )
    parser.add_argument(
        "--judge",
        action="store_true",
        help="with --dataset: ranking parameters judged on it and on the docs corpus",
    )

    parser.add_argument(
        "--fusion-home",
        type=Path,
        help="with --docs-eval: a LOCALRESEARCH_HOME with an embedding model installed; the"
        " fusion grid on the docs corpus",
    )
    parser.add_argument("--scale-queries", type=int, default=1000)
    parser.add_argument("--work", type=Path, help="working folder (default: a temp dir)")
    parser.add_argument(
        "--embeddings",
        default="none",
        help="[memory.embeddings] provider for the dataset run: none (default), local, ollama...",
    )
    parser.add_argument("--embeddings-model", default="", help="its model (default: provider's)")
    parser.add_argument("--vector-weight", type=float, help="memory.embeddings.vector_weight")
    parser.add_argument("--similarity-floor", type=float, help="memory.embeddings.similarity_floor")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = args.work or Path(tmp)
        if args.dataset and args.tune:
            tune(args.dataset, work / "tune")
            from tune_memory import tune_ranking

            tune_ranking(
                args.dataset, work / "tune", args.vectors, DEFAULT_LENGTH_PRIOR,
                args.embeddings_model,
            )  # fmt: skip
        elif args.dataset and not args.judge:
            extra = embeddings_env(
                args.embeddings, args.embeddings_model, args.vector_weight, args.similarity_floor
            )
            runs = 1 if extra else args.index_runs  # embedding the corpus 5 times: no
            bench_dataset(args.dataset, work / "dataset", args.split, extra, runs)
        if args.docs_eval and args.fusion_home:
            import asyncio

            import judge_memory

            asyncio.run(judge_memory.judge_fusion(args.fusion_home, work / "fusion"))
        elif args.docs_eval:
            docs_env = embeddings_env(
                args.embeddings, args.embeddings_model, args.vector_weight, args.similarity_floor
            )
            bench_docs(work / "docs-eval", docs_env)
        if args.judge and args.dataset:
            judge_both(args.dataset, work / "judge")
        if args.scale_chunks:
            bench_scale(work, args.scale_chunks, args.scale_queries)


def bench_docs(work: Path, extra_env: dict[str, str] | None = None) -> None:
    """The second corpus through the daemon (HTTP), against raw FTS5 on the very rows the
    daemon holds; with `--embeddings`, BM25 alone and the embeddings provider in the same run.

    The target ("not below raw FTS5") asks whether the daemon's search loses anything against
    FTS5 ranking every match itself, so the baseline ranks exactly the daemon's rows, read from
    its database: the corpus's chunks, the workspace's MEMORY.md (every home has one; it moves
    the corpus statistics N and avgdl) and the `grams` column (a chunk with an unspaced script
    is longer by its character pairs). The corpus's chunks alone are printed beside it."""
    import judge_memory as judged

    work.mkdir(parents=True, exist_ok=True)
    queries = {q["_id"]: q["text"] for q in load_jsonl(judged.DOCS_EVAL / "queries.jsonl")}
    qrels = load_qrels(judged.DOCS_EVAL / "qrels" / "test.tsv")
    variants = {"BM25 alone": {}, **({"with embeddings": extra_env} if extra_env else {})}
    results: dict[str, dict[str, float]] = {}
    held: list[tuple[int, str, str, str, str]] = []
    for number, (name, env) in enumerate(variants.items()):
        home = work / f"home-{number}"
        with Daemon(home, env) as daemon:
            seconds, _report = daemon.index(judged.DOCS)
            run: dict[str, dict[str, float]] = {}
            latencies: list[float] = []
            for qid, text in queries.items():
                elapsed, result = daemon.search(text, 200)
                latencies.append(elapsed)
                hits = [(h["file"], h["heading"], float(h["score"])) for h in result["results"]]
                run[qid] = judged.to_section_run(hits)
            if not held:
                held = judged.held_rows(home / "data" / "localresearch.db")
        results[name] = ours = evaluate(run, qrels)
        print(f"docs corpus, {name}: nDCG@10 {ours['ndcg@10']:.4f}, recall@100"
              f" {ours['recall@100']:.4f}; indexed in {seconds:.1f} s; search (limit 200) p50"
              f" {percentile(latencies, 0.5) * 1000:.1f} ms; load {os.getloadavg()[0]:.1f}",
              flush=True)  # fmt: skip
    ours = results["BM25 alone"]
    raw = evaluate(judged.raw_fts_run(held, queries, work), qrels)
    corpus = [row for row in held if Path(row[1]).is_relative_to(judged.DOCS)]
    alone = evaluate(judged.raw_fts_run(corpus, queries, work), qrels)
    others = sorted({Path(row[1]).name for row in held} - {Path(row[1]).name for row in corpus})
    print(
        f"docs corpus: the daemon holds {len(held)} chunks ({len(corpus)} of docs/, the rest"
        f" {', '.join(others) or 'none'}), {len(queries)} judged queries;"
        f" nDCG@10 {ours['ndcg@10']:.4f} (raw FTS5 on the same rows: {raw['ndcg@10']:.4f}),"
        f" recall@100 {ours['recall@100']:.4f} (raw {raw['recall@100']:.4f}); raw FTS5 on"
        f" docs/'s chunks alone: {alone['ndcg@10']:.4f} / {alone['recall@100']:.4f}"
    )


def judge_both(dataset: Path, work: Path) -> None:
    """Every ranking variant on SciFact and on the docs corpus (in-process, same code)."""
    import asyncio

    import judge_memory as judged

    work.mkdir(parents=True, exist_ok=True)
    docs = work / "scifact-docs"
    write_corpus(load_jsonl(dataset / "corpus.jsonl"), docs)
    sci_queries = {q["_id"]: q["text"] for q in load_jsonl(dataset / "queries.jsonl")}
    sci_qrels = load_qrels(dataset / "qrels" / "test.tsv")
    doc_queries = {q["_id"]: q["text"] for q in load_jsonl(judged.DOCS_EVAL / "queries.jsonl")}
    doc_qrels = load_qrels(judged.DOCS_EVAL / "qrels" / "test.tsv")

    def sci_run(hits: list[Any]) -> dict[str, float]:
        return to_run([{"file": h.file, "score": h.score} for h in hits])

    def doc_run(hits: list[Any]) -> dict[str, float]:
        return judged.to_section_run([(h.file, h.heading, h.score) for h in hits])

    corpora = [
        ("scifact", docs, {q: sci_queries[q] for q in sci_qrels}, sci_qrels, sci_run),
        ("docs", judged.DOCS, doc_queries, doc_qrels, doc_run),
    ]
    asyncio.run(judged.judge(corpora, work))
    english = chunks_of(docs)
    plain, with_grams = judged.index_size_cost(english, work)
    print(
        f"grams column on SciFact (English, {len(english)} chunks): FTS5 table {plain / 1e6:.2f}"
        f" MB without, {with_grams / 1e6:.2f} MB with (+{100 * (with_grams / plain - 1):.1f}%)"
    )


if __name__ == "__main__":
    main()
