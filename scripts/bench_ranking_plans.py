"""The top-k plans of memory/ranking.py timed against the previous one, query by query, in-process
on an index `bench_memory.py --scale-chunks` built (keep it with --work):

    .venv/bin/python scripts/bench_memory.py --scale-chunks 1000000 --work /tmp/scale
    .venv/bin/python scripts/bench_ranking_plans.py --db /tmp/scale/scale-home/data/localresearch.db
    # the cost of keeping every query word, on an index of SciFact (e.g. bench_memory.py
    # --dataset ... --work W leaves one in W/dataset/home1/data/localresearch.db):
    .venv/bin/python scripts/bench_ranking_plans.py --db DB --stoplist ../shared/datasets/scifact
    # the plan of memory/ranking.py as committed at a revision against the current one, on the
    # scale index's generated queries or (with --dataset) a BEIR set's test queries:
    .venv/bin/python scripts/bench_ranking_plans.py --db DB --against a1aa877 \
        --dataset ../shared/datasets/scifact

The queries are bench_scale's (same vocabulary, same seed). Both plans run on the same connection
and the same cached document frequencies, alternating, so load on a shared machine hits both.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_memory import _vocabulary, percentile

from localresearch.memory import ranking
from localresearch.memory.query import by_budget, parse_terms
from localresearch.memory.schema import NOTES_TABLE

ROOT = Path(__file__).resolve().parents[1]
Plan = Callable[[sqlite3.Connection, ranking.TableStats, list[str], int], list[sqlite3.Row]]


def previous_top_rows(
    conn: sqlite3.Connection, stats: ranking.TableStats, terms: list[str], fetch: int
) -> list[sqlite3.Row]:
    """The plan before 2026-12-02's change: a widened plan re-scored every candidate."""
    total = stats.rows(conn)
    df = stats.frequencies(conn, terms)
    scored = by_budget(terms, df, ranking.MAX_MATCH_ROWS, float(total))
    if not scored:
        return []
    table = stats.table
    weights = ", ".join(str(w) for w in ranking.WEIGHTS)
    search_sql = ranking._SEARCH_SQL.format(table=table, weights=weights)
    if sum(df[t] for t in scored) <= ranking.SCORE_ALL_ROWS:
        return conn.execute(search_sql, (" OR ".join(scored), fetch)).fetchall()
    candidates = by_budget(
        scored, df, ranking.MAX_CANDIDATE_ROWS, ranking.RARE_TERM_FRACTION * total
    )
    while True:
        if len(candidates) == len(scored):
            return conn.execute(search_sql, (" OR ".join(scored), fetch)).fetchall()
        rare = " OR ".join(candidates)
        others = " OR ".join(t for t in scored if t not in candidates)
        sql = ranking._CANDIDATE_SQL.format(table=table, weights=weights)
        rows = conn.execute(sql, (f"({rare}) AND ({others})", rare, fetch)).fetchall()
        threshold = -float(rows[fetch - 1]["score"]) if len(rows) >= fetch else None
        rest = [t for t in scored if t not in candidates]
        needed = ranking.essential(rest, df, total, threshold)
        if not needed or sum(df[t] for t in needed) > ranking.WIDEN_ROWS:
            return rows
        wanted = set(candidates) | set(needed)
        candidates = [t for t in scored if t in wanted]


def plan_at(revision: str) -> types.ModuleType:
    """memory/ranking.py as committed at `revision` (git), beside the current one."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:localresearch/memory/ranking.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    module = types.ModuleType(f"ranking_{revision}")
    sys.modules[module.__name__] = module  # its dataclasses look their module up
    exec(compile(source, f"{revision}:ranking.py", "exec"), module.__dict__)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="the scale run's index")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="times through the queries")
    parser.add_argument(
        "--stoplist",
        type=Path,
        help="a BEIR folder: its test queries, the current plan on every word ('current')"
        " against the same plan with the stoplist dropped until 2026-12-02 ('previous')",
    )
    parser.add_argument(
        "--against",
        metavar="REVISION",
        help="time the plan committed at this git revision ('previous') against the current",
    )
    parser.add_argument("--dataset", type=Path, help="with --against: a BEIR folder's test queries")
    args = parser.parse_args()
    rng = random.Random(7)
    vocab = _vocabulary(50_000, rng)
    texts = [
        " ".join(rng.sample(vocab[100:20_000], rng.randint(2, 5))) for _ in range(args.queries)
    ]
    conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    plans: dict[str, Plan] = {"previous": previous_top_rows, "current": ranking.top_rows}
    stats_of: dict[str, Callable[[str], ranking.TableStats]] = {}
    if args.against:
        previous = plan_at(args.against)  # with its own document frequency cache and budget
        plans = {"previous": previous.top_rows, "current": ranking.top_rows}
        stats_of["previous"] = previous.TableStats
        if args.dataset:
            from bench_memory import load_jsonl, load_qrels

            found = {q["_id"]: q["text"] for q in load_jsonl(args.dataset / "queries.jsonl")}
            texts = [found[qid] for qid in load_qrels(args.dataset / "qrels" / "test.tsv")]
    if args.stoplist:
        from bench_memory import load_jsonl, load_qrels
        from grid_memory import STOPLIST

        queries = {q["_id"]: q["text"] for q in load_jsonl(args.stoplist / "queries.jsonl")}
        texts = [queries[qid] for qid in load_qrels(args.stoplist / "qrels" / "test.tsv")]

        def stopped(
            conn: sqlite3.Connection, stats: ranking.TableStats, terms: list[str], fetch: int
        ) -> list[sqlite3.Row]:
            kept = [t for t in terms if t.strip('"') not in STOPLIST] or terms
            return ranking.top_rows(conn, stats, kept, fetch)

        plans = {"previous": stopped, "current": ranking.top_rows}
    stats = {name: stats_of.get(name, ranking.TableStats)(NOTES_TABLE) for name in plans}
    times: dict[str, list[float]] = {name: [] for name in plans}
    for text in texts:  # warm the frequency caches and the page cache alike
        for name, plan in plans.items():
            plan(conn, stats[name], parse_terms(text), args.limit)
    differ = 0
    widened: set[int] = set()
    for number, text in enumerate(texts * args.rounds):
        found = {}
        order = list(plans.items())
        for name, plan in order if number % 2 else order[::-1]:  # neither always goes first
            terms = parse_terms(text)
            rounds = stats["current"].rounds
            started = time.perf_counter()
            rows = plan(conn, stats[name], terms, args.limit)
            times[name].append(time.perf_counter() - started)
            found[name] = [row["id"] for row in rows]
            if stats["current"].rounds > rounds:
                widened.add(number)
        differ += number < len(texts) and found["previous"] != found["current"]
    for name in plans:
        p50, p99 = percentile(times[name], 0.5) * 1000, percentile(times[name], 0.99) * 1000
        mean = statistics.mean(times[name]) * 1000
        print(f"{name:9s} p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean {mean:.2f} ms")
    if widened:
        for name in plans:
            some = [times[name][n] for n in sorted(widened)]
            print(
                f"{name:9s} on the {len(some)} widened queries:"
                f" p50 {percentile(some, 0.5) * 1000:.2f} ms,"
                f" mean {statistics.mean(some) * 1000:.2f} ms"
            )
    ratio = {
        q: percentile(times["current"], q) / percentile(times["previous"], q) for q in (0.5, 0.99)
    }
    print(
        f"current / previous: p50 {ratio[0.5]:.2f}x, p99 {ratio[0.99]:.2f}x;"
        f" widened queries {stats['current'].rounds} of {len(texts) * (args.rounds + 1)} runs;"
        f" results differing: {differ} of {len(texts)}"
    )


if __name__ == "__main__":
    main()
