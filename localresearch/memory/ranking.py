"""Top-k BM25 over one FTS table where every query term counts: exact whenever the check below
passes or its widening fits the budget (always on small indexes).

FTS5 scores every chunk a query matches, and an OR of common words matches most of an index.
Candidates are therefore first the chunks holding the query's rarer terms (C), scored on all its
terms; the other terms (K) only add to their scores. That alone would lose a chunk holding only
K terms, so the plan is checked MaxScore-style: a term adds at most idf * (k1 + 1) to any
chunk's BM25 (FTS5's k1 = 1.2, whatever the column weights); if the bounds of the K terms sum
to less than the k-th best score found, no chunk outside C can reach the top k. Otherwise the K
terms needed to pass that test join C and the query runs once more (the k-th score only rises,
so the second plan is exact), as long as they add at most WIDEN_ROWS postings. Small indexes
(at most SCORE_ALL_ROWS chunks), or queries whose postings are few anyway, are scored whole.

A query is scored on every term but those FTS5's idf floors (in at least half the chunks: they
add at most 2.2e-6 to a score, so leaving them out changes no ranking but exact ties) and, on
huge indexes only, the commonest terms past MAX_MATCH_ROWS postings (matched_terms).
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field

from localresearch.memory.query import by_budget
from localresearch.memory.schema import RANK_WEIGHTS

K1 = 1.2  # FTS5's bm25() constant
# Candidates: chunks with a rarer term (document frequency at most RARE_TERM_FRACTION of the
# chunks, postings within MAX_CANDIDATE_ROWS); each candidate costs ~2.5 us of bm25(). A query
# whose terms together match at most SCORE_ALL_ROWS chunks is scored whole at once.
RARE_TERM_FRACTION = 0.05
MAX_CANDIDATE_ROWS = 700
SCORE_ALL_ROWS = 700
# The widened plan adds at most this many postings; past it the first plan's result stands
# (counted in TableStats.inexact). On SciFact an unbounded widening doubled the query time
# for the same nDCG@10 (docs/memory.md); small indexes are always exact (SCORE_ALL_ROWS).
WIDEN_ROWS = 700
# On huge indexes the most common terms are left out so that matching stays within
# MAX_MATCH_ROWS postings (their idf is small: below log(chunks / MAX_MATCH_ROWS)). FTS5 reads
# every posting of a scored term once per query (bm25()'s idf), so this bounds a query's cost.
# The floored terms (matched_terms) were most of those postings: without them, 30,000 cost on
# SciFact what 10,000 did with them (until 2026-12-02), and every other term of its claims
# fits (their postings: 23,300 at most). A new term's frequency is counted up to it, once.
MAX_MATCH_ROWS = 30_000
DF_CACHE_SIZE = 50_000

# Column weights of bm25() (heading path, content, grams); a module value so the benchmark's
# judging grid can try others on the same index.
WEIGHTS = RANK_WEIGHTS
_COLUMNS = """hits.rowid AS id, {text}.heading, {text}.content, hits.score, c.line_start,
       c.line_end, c.kind, c.page, f.rel, f.path, f.mtime_ns"""
# Only the best rows' text is read (reading every match's text first cost 10x at 1M chunks).
_SEARCH_SQL = f"""
SELECT {_COLUMNS.format(text="t")}
FROM (SELECT rowid, bm25({{table}}, {{weights}}) AS score FROM {{table}}
      WHERE {{table}} MATCH ? ORDER BY score LIMIT ?) AS hits
JOIN {{table}} AS t ON t.rowid = hits.rowid
JOIN memory_chunks AS c ON c.id = hits.rowid
JOIN memory_files AS f ON f.id = c.file_id
ORDER BY hits.score
"""
# The candidates are scored in two parts, each chunk once: those that also have a K term,
# matched as `(C) AND (K)`, where FTS5 skips through K's long posting lists to the candidates
# instead of walking them; then the rest, matched as `C` (K would score zero there). The scores
# are those of BM25 over `C OR K` (FTS5's idf is per phrase, whatever the expression).
_CANDIDATE_SQL = f"""
WITH both_ AS MATERIALIZED (
    SELECT rowid, bm25({{table}}, {{weights}}) AS score
    FROM {{table}} WHERE {{table}} MATCH ?)
SELECT {_COLUMNS.format(text="t")}
FROM (SELECT rowid, score FROM both_
      UNION ALL
      SELECT rowid, bm25({{table}}, {{weights}}) AS score
      FROM {{table}}
      WHERE {{table}} MATCH ? AND +rowid NOT IN (SELECT rowid FROM both_)
      ORDER BY score LIMIT ?) AS hits
JOIN {{table}} AS t ON t.rowid = hits.rowid
JOIN memory_chunks AS c ON c.id = hits.rowid
JOIN memory_files AS f ON f.id = c.file_id
ORDER BY hits.score
"""
CHUNKS_SQL = """
SELECT c.id, t.heading, t.content, 0.0 AS score, c.line_start, c.line_end, c.kind, c.page,
       f.rel, f.path, f.mtime_ns
FROM memory_chunks AS c
JOIN {table} AS t ON t.rowid = c.id
JOIN memory_files AS f ON f.id = c.file_id
WHERE c.id IN ({marks})
"""


@dataclass
class TableStats:
    """Cached row count and document frequencies of one FTS table (cleared when it changes)."""

    table: str
    total: int | None = None
    df: dict[str, int] = field(default_factory=dict)
    rounds: int = 0  # queries that needed the second, widened plan (for tests and benchmarks)
    inexact: int = 0  # queries whose widening was over budget (WIDEN_ROWS)

    def forget(self) -> None:
        self.total = None
        self.df = {}

    def rows(self, conn: sqlite3.Connection) -> int:
        if self.total is None:
            if self.table == "memory_fts":  # the big one: all chunks but the few derived ones
                sql = "SELECT (SELECT count(*) FROM memory_chunks)"
                sql += " - (SELECT count(*) FROM memory_fts_derived)"
            else:
                sql = f"SELECT count(*) FROM {self.table}"
            self.total = int(conn.execute(sql).fetchone()[0])
        return self.total

    def frequencies(self, conn: sqlite3.Connection, terms: list[str]) -> dict[str, int]:
        df = self.df
        if len(df) > DF_CACHE_SIZE:
            df = self.df = {}
        for term in terms:
            if term not in df:
                row = conn.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM {self.table} WHERE {self.table}"
                    " MATCH ? LIMIT ?)",
                    (term, MAX_MATCH_ROWS + 1),
                ).fetchone()
                df[term] = int(row[0])
        return df


def upper_bound(df: int, total: int) -> float:
    """The most a term can add to any chunk's BM25 (FTS5's idf, floored as FTS5 floors it)."""
    idf = math.log((total - df + 0.5) / (df + 0.5)) if total > 0 else 0.0
    return max(idf, 1e-6) * (K1 + 1)


def essential(
    rest: list[str], df: dict[str, int], total: int, threshold: float | None
) -> list[str]:
    """The terms of `rest` a chunk outside the candidates needs to reach `threshold` (the k-th
    best score; None: fewer than k found, every term is needed)."""
    if threshold is None:
        return list(rest)
    needed: list[str] = []
    room = 0.0
    # The commonest terms (smallest bounds) are the ones that can be left out.
    for term in sorted(rest, key=lambda t: df[t], reverse=True):
        bound = upper_bound(df[term], total)
        if not needed and room + bound < threshold:
            room += bound
        else:
            needed.append(term)
    return needed


def matched_terms(terms: list[str], df: dict[str, int], total: int) -> tuple[list[str], list[str]]:
    """The terms a query is scored on (within the matching budget), and those FTS5's idf floors
    (document frequency at least half the chunks: each adds at most 2.2e-6 to a score), which
    only a chunk without the others needs. Query order is kept."""
    found = [t for t in terms if df.get(t, 0) > 0]
    counted = [t for t in found if 2 * df[t] < total]
    if not counted:
        return by_budget(found, df, MAX_MATCH_ROWS, float(total)), []
    floored = [t for t in found if 2 * df[t] >= total]
    return by_budget(counted, df, MAX_MATCH_ROWS, float(total)), floored


def top_rows(
    conn: sqlite3.Connection, stats: TableStats, terms: list[str], fetch: int
) -> list[sqlite3.Row]:
    """The `fetch` best chunks of the table by BM25 over all the terms (best first)."""
    if not terms:
        return []
    total = stats.rows(conn)
    df = stats.frequencies(conn, terms)
    scored, floored = matched_terms(terms, df, total)
    if not scored:
        return []
    table = stats.table
    weights = ", ".join(str(w) for w in WEIGHTS)
    search_sql = _SEARCH_SQL.format(table=table, weights=weights)
    if total <= SCORE_ALL_ROWS or sum(df[t] for t in scored + floored) <= SCORE_ALL_ROWS:
        every = [t for t in terms if t in scored or t in floored]
        return conn.execute(search_sql, (" OR ".join(every), fetch)).fetchall()
    candidates = by_budget(scored, df, MAX_CANDIDATE_ROWS, RARE_TERM_FRACTION * total)
    sql = _CANDIDATE_SQL.format(table=table, weights=weights)
    rare = " OR ".join(candidates)
    others = " OR ".join(t for t in scored if t not in candidates)
    if others:
        rows = conn.execute(sql, (f"({rare}) AND ({others})", rare, fetch)).fetchall()
    else:
        rows = conn.execute(search_sql, (rare, fetch)).fetchall()
    # The floored terms are scored nowhere (no ranking moves but exact ties); their bounds
    # make them needed only while fewer than `fetch` chunks are found.
    rest = [t for t in scored if t not in candidates] + floored
    while rest:
        threshold = -float(rows[fetch - 1]["score"]) if len(rows) >= fetch else None
        needed = essential(rest, df, total, threshold)
        if not needed:
            break
        if sum(df[t] for t in needed) > WIDEN_ROWS:
            stats.inexact += 1
            break
        stats.rounds += 1
        # Only the chunks the needed terms add (those without a term matched before), scored
        # on every other scored term as above; the chunks scored already keep their scores.
        rest = [t for t in rest if t not in needed]
        new = " OR ".join(needed)
        seen = " OR ".join(t for t in scored + floored if t not in rest and t not in needed)
        also = " OR ".join(t for t in rest if t not in floored)
        both = f"(({new}) AND ({also})) NOT ({seen})" if also else ""
        added = conn.execute(sql, (both or f"({new}) NOT ({seen})", f"({new}) NOT ({seen})",
                                   fetch)).fetchall()  # fmt: skip
        rows = sorted([*rows, *added], key=lambda row: float(row["score"]))[:fetch]
    return rows
