"""Lexical ranking changes beyond FTS5's bm25(), each judged on SciFact (train and test) and docs.

    .venv/bin/python scripts/grid_lexical.py --dataset ../shared/datasets/scifact

FTS5 fixes bm25's formula; to judge what it cannot express (other k1/b, term proximity, a
document's chunks summed, Lucene's idf, hyphenated words as phrases, pseudo-relevance feedback,
idf powers, Lucene's coordination factor, log tf)
the chunks of both corpora (the shipped chunking) go into an in-memory FTS5 table, and its
positional postings (fts5vocab `instance`, the tokenizer's own stems) into numpy arrays; every
variant is scored exactly over all chunks from them. The first row reproduces bm25() (SciFact
test 0.6927, as scripts/grid_memory.py). Proximity rows rescore the best 200 chunks, as a
daemon would. A SciFact document and a docs section take their best chunk.
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
import sqlite3
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import grid_memory as grid
from bench_memory import Qrels, evaluate

from localresearch.memory.schema import TOKENIZER

Positions = dict[int, list[tuple[int, int]]]  # chunk -> [(column: 0 heading / 1 content, offset)]
# Words written joined ("IL-6", "TNF-alpha", "Wi-Fi", "p53/MDM2"): the "compound" rows.
COMPOUND = re.compile(r"\w+(?:[-/.]\w+)+")


@dataclass
class Index:
    """One corpus's chunks as positional postings, and its judged queries as stem sequences."""

    units: list[str]
    lengths: np.ndarray
    columns: np.ndarray  # (chunks, 2): heading and content lengths
    positions: dict[str, Positions]
    queries: dict[str, list[str]]
    compounds: dict[str, list[list[str]]]
    qrels: Qrels
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    forward: dict[int, dict[str, int]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.units)

    def idf(self, term: str, lucene: bool = False) -> float:
        df = len(self.positions.get(term, {}))
        ratio = (self.n - df + 0.5) / (df + 0.5)
        return math.log(1 + ratio) if lucene else max(math.log(ratio), 1e-6)  # FTS5 floors

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        if term not in self.arrays:
            chunks = self.positions.get(term, {})
            ids = np.array(sorted(chunks), dtype=np.int64)
            tf = np.array([len(chunks[i]) for i in ids.tolist()], dtype=float)
            self.arrays[term] = (ids, tf)
        return self.arrays[term]


def stemmer(conn: sqlite3.Connection) -> Callable[[str], list[str]]:
    conn.execute(f"CREATE VIRTUAL TABLE q USING fts5(x, tokenize='{TOKENIZER}')")
    conn.execute("CREATE VIRTUAL TABLE qv USING fts5vocab(q, instance)")

    def stem(text: str) -> list[str]:
        conn.execute("DELETE FROM q")
        conn.execute("INSERT INTO q (rowid, x) VALUES (1, ?)", (text,))
        return [t for (t,) in conn.execute("SELECT term FROM qv ORDER BY offset")]

    return stem


def build(corpus: grid.Corpus) -> Index:
    chunks = grid.chunks_of(corpus.files, 1200, 150)
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE VIRTUAL TABLE f USING fts5(heading, content, tokenize='{TOKENIZER}')")
    conn.executemany(
        "INSERT INTO f (rowid, heading, content) VALUES (?, ?, ?)",
        [(i, c.heading, c.content) for i, (_, c) in enumerate(chunks)],
    )
    conn.execute("CREATE VIRTUAL TABLE vi USING fts5vocab(f, instance)")
    positions: dict[str, Positions] = defaultdict(lambda: defaultdict(list))
    lengths = np.zeros(len(chunks))
    columns = np.zeros((len(chunks), 2))
    for term, chunk, column, offset in conn.execute("SELECT term, doc, col, offset FROM vi"):
        positions[term][chunk].append((0 if column == "heading" else 1, offset))
        lengths[chunk] += 1
        columns[chunk, 0 if column == "heading" else 1] += 1
    stem = stemmer(conn)
    queries, compounds = {}, {}
    for qid, text in corpus.queries.items():
        # The daemon's query terms (every word, a repeated word once), as the tokenizer stems them.
        words = [t.strip('"*') for t in grid.terms_of(text, stopwords=False)]
        queries[qid] = stem(" ".join(words))
        compounds[qid] = [s for s in map(stem, COMPOUND.findall(text)) if len(s) > 1]
    units = [corpus.unit(file, chunk.heading) for file, chunk in chunks]
    return Index(units, lengths, columns, dict(positions), queries, compounds, corpus.qrels)


@dataclass(frozen=True)
class Variant:
    label: str
    k1: float = 1.2
    b: float = 0.75
    lucene_idf: bool = False
    window: int = 0  # > 0: query-term pairs within this many positions add to the score
    ordered: bool = False  # only pairs in query order, adjacent in the query (window 1: bigrams)
    proximity: float = 0.0
    sum_weight: float = 0.0  # a unit's score: best chunk + this x the others
    compound: float = 0.0  # weight of a hyphenated word as a phrase
    feedback_terms: int = 0  # pseudo-relevance feedback: terms from the best 10 chunks
    feedback_weight: float = 0.0
    heading_b: float | None = None  # BM25F: each column normalised by its own length
    heading_weight: float = 1.0
    delta: float = 0.0  # BM25+ (Lv & Zhai 2011): every matched term adds idf x delta
    bm25l: bool = False  # BM25L (Lv & Zhai 2011): delta added to the length-normalised tf
    mu: float = 0.0  # > 0: Dirichlet-smoothed query likelihood instead of BM25
    f2exp: float = 0.0  # > 0: the axiomatic F2-EXP with this k (Fang & Zhai 2005), s = 0.5
    idf_power: float = 1.0  # each term's idf raised to this power (> 1 favours rare words)
    coord: float = 0.0  # score x (idf share of the query matched) ** coord (Lucene's coord)
    log_tf: bool = False  # 1 + ln(tf) in place of tf before saturation


def bm25l(index: Index, terms: list[str], v: Variant) -> np.ndarray:
    """BM25L as published: c = tf / (1 - b + b dl / avgdl), idf log((N + 1) / (df + 0.5)),
    each term idf (k1 + 1)(c + delta) / (k1 + c + delta)."""
    scores = np.zeros(index.n)
    norm = 1 - v.b + v.b * index.lengths / index.lengths.mean()
    for term in terms:
        ids, tf = index.postings(term)
        if len(ids):
            idf = math.log((index.n + 1) / (len(ids) + 0.5))
            c = tf / norm[ids] + v.delta
            scores[ids] += idf * (v.k1 + 1) * c / (v.k1 + c)
    return scores


def f2exp(index: Index, terms: list[str], v: Variant, s: float = 0.5) -> np.ndarray:
    """F2-EXP: each term (N / df)^k x tf / (tf + s + s dl / avgdl)."""
    scores = np.zeros(index.n)
    norm = s + s * index.lengths / index.lengths.mean()
    for term in terms:
        ids, tf = index.postings(term)
        if len(ids):
            scores[ids] += (index.n / len(ids)) ** v.f2exp * tf / (tf + norm[ids])
    return scores


def dirichlet(index: Index, terms: list[str], v: Variant) -> np.ndarray:
    """Query likelihood with Dirichlet smoothing (Zhai & Lafferty 2001), rank-equivalent form:
    sum of log(1 + tf / (mu p(t|C))) + |q| log(mu / (dl + mu)), over the chunks matching a
    term (|q|: the query's terms found in the corpus); unmatched chunks get -inf."""
    found = [t for t in dict.fromkeys(terms) if len(index.postings(t)[0])]
    size = index.lengths.sum()
    scores = np.full(index.n, -np.inf)
    matched = np.zeros(index.n, dtype=bool)
    total = np.zeros(index.n)
    for term in found:
        ids, tf = index.postings(term)
        p = tf.sum() / size
        total[ids] += np.log1p(tf / (v.mu * p))
        matched[ids] = True
    scores[matched] = total[matched] + len(found) * np.log(v.mu / (index.lengths[matched] + v.mu))
    return scores


def bm25f(index: Index, terms: list[str], v: Variant) -> np.ndarray:
    """BM25F: heading and content tf, each over its column's own length norm, then saturated."""
    assert v.heading_b is not None
    scores = np.zeros(index.n)
    mean = np.maximum(index.columns.mean(axis=0), 1e-9)
    norm_h = 1 - v.heading_b + v.heading_b * index.columns[:, 0] / mean[0]
    norm_c = np.maximum(1 - v.b + v.b * index.columns[:, 1] / mean[1], 1e-9)
    for term in terms:
        chunks = index.positions.get(term, {})
        if not chunks:
            continue
        ids = np.array(sorted(chunks), dtype=np.int64)
        h = np.array([sum(1 for c, _ in chunks[i] if c == 0) for i in ids.tolist()], float)
        tf = v.heading_weight * h / norm_h[ids] + (index.postings(term)[1] - h) / norm_c[ids]
        scores[ids] += index.idf(term) * tf * (v.k1 + 1) / (tf + v.k1)
    return scores


def bm25(index: Index, terms: list[str], v: Variant) -> np.ndarray:
    scores = np.zeros(index.n)
    norm = v.k1 * (1 - v.b + v.b * index.lengths / index.lengths.mean())
    for term in terms:
        ids, tf = index.postings(term)
        if len(ids):
            idf = index.idf(term, v.lucene_idf) ** v.idf_power
            if v.log_tf:
                tf = 1 + np.log(tf)
            scores[ids] += idf * (tf * (v.k1 + 1) / (tf + norm[ids]) + v.delta)
    if v.coord:
        share = np.zeros(index.n)
        unique = list(dict.fromkeys(terms))
        total = sum(index.idf(t) for t in unique) or 1.0
        for term in unique:
            share[index.postings(term)[0]] += index.idf(term) / total
        scores *= share**v.coord
    return scores


def near(index: Index, terms: list[str], chunks: list[int], v: Variant) -> dict[int, float]:
    """Pairs of query terms within the window, saturated like a term (k1 1.2), weighted by
    the rarer term's idf (sequential-dependence style)."""
    out: dict[int, float] = defaultdict(float)
    if v.ordered:
        pairs = [(a, b) for a, b in itertools.pairwise(terms) if a != b]
    else:
        pairs = list(itertools.combinations(dict.fromkeys(terms), 2))
    for a, b in pairs:
        pa, pb = index.positions.get(a, {}), index.positions.get(b, {})
        weight = min(index.idf(a), index.idf(b))
        for chunk in chunks:
            if chunk in pa and chunk in pb:
                xs = [o for c, o in pa[chunk] if c == 1]
                ys = [o for c, o in pb[chunk] if c == 1]
                gaps = [y - x if v.ordered else abs(y - x) for x in xs for y in ys]
                count = sum(1 for g in gaps if 0 < g <= v.window)
                if count:
                    out[chunk] += weight * count * 2.2 / (count + 1.2)
    return out


def phrase_tf(index: Index, stems: list[str]) -> dict[int, int]:
    out = {}
    for chunk, first in index.positions.get(stems[0], {}).items():
        rest = [set(index.positions.get(t, {}).get(chunk, [])) for t in stems[1:]]
        hits = sum(1 for c, o in first if all((c, o + i + 1) in s for i, s in enumerate(rest)))
        if hits:
            out[chunk] = hits
    return out


def rank(index: Index, qid: str, v: Variant) -> dict[str, float]:
    terms = index.queries[qid]
    if v.mu:
        scores = dirichlet(index, terms, v)
        matched = np.nonzero(np.isfinite(scores))[0]
        order = matched[np.argsort(-scores[matched], kind="stable")].tolist()
        units: dict[str, float] = {}
        for chunk in order[:1000]:
            units.setdefault(index.units[chunk], float(scores[chunk]))
        return dict(list(units.items())[:100])
    if v.f2exp:
        scores = f2exp(index, terms, v)
    elif v.bm25l:
        scores = bm25l(index, terms, v)
    else:
        scores = bm25(index, terms, v) if v.heading_b is None else bm25f(index, terms, v)
    norm = v.k1 * (1 - v.b + v.b * index.lengths / index.lengths.mean())
    for stems in index.compounds[qid] if v.compound else []:
        tf = phrase_tf(index, stems)
        idf = max(math.log((index.n - len(tf) + 0.5) / (len(tf) + 0.5)), 1e-6)
        for chunk, f in tf.items():
            scores[chunk] += v.compound * idf * f * (v.k1 + 1) / (f + norm[chunk])
    matched = np.nonzero(scores > 0)[0]
    order = matched[np.argsort(-scores[matched], kind="stable")].tolist()
    if v.feedback_terms:
        weights: dict[str, float] = defaultdict(float)
        for chunk in order[:10]:
            if not index.forward:
                for term, chunks in index.positions.items():
                    for c, ps in chunks.items():
                        index.forward.setdefault(c, {})[term] = len(ps)
            share = math.exp(scores[chunk] - scores[order[0]]) / index.lengths[chunk]
            for term, tf in index.forward[chunk].items():
                weights[term] += tf * share
        best = sorted(
            ((w * index.idf(t), t) for t, w in weights.items() if index.idf(t) > 1), reverse=True
        )[: v.feedback_terms]
        total = sum(w for w, _ in best) or 1.0
        for w, term in best:
            scores += v.feedback_weight * w / total * bm25(index, [term], v)
        matched = np.nonzero(scores > 0)[0]
        order = matched[np.argsort(-scores[matched], kind="stable")].tolist()
    if v.proximity:
        head = order[:200]
        for chunk, extra in near(index, terms, head, v).items():
            scores[chunk] += v.proximity * extra
        order = sorted(head, key=lambda c: -scores[c])
    units: dict[str, list[float]] = {}
    for chunk in order[:1000]:
        units.setdefault(index.units[chunk], []).append(float(scores[chunk]))
    merged = {u: s[0] + v.sum_weight * sum(s[1:]) for u, s in units.items()}
    return dict(sorted(merged.items(), key=lambda kv: -kv[1])[:100])


GRID = [
    Variant("FTS5 bm25() as shipped (k1 1.2, b 0.75)"),
    *[Variant(f"k1 {k1}, b {b}", k1=k1, b=b) for k1 in (0.9, 1.2, 1.5, 2.0) for b in (0.3, 0.5)],
    Variant("k1 0.9, b 0.75", k1=0.9),
    Variant("k1 1.5, b 0.75", k1=1.5),
    Variant("BM25F, heading b 0.75 (own length), weight 1", heading_b=0.75),
    Variant("BM25F, heading b 0, weight 1", heading_b=0.0),
    Variant("BM25F, heading b 0, weight 2", heading_b=0.0, heading_weight=2.0),
    Variant("BM25F, heading b 0, weight 0.5", heading_b=0.0, heading_weight=0.5),
    Variant("BM25F, heading b 0.5, weight 1", heading_b=0.5),
    Variant("Lucene idf log(1 + ...)", lucene_idf=True),
    Variant("adjacent query words in order (bigram), 0.1", window=1, ordered=True, proximity=0.1),
    Variant("adjacent query words in order (bigram), 0.3", window=1, ordered=True, proximity=0.3),
    Variant("any two query words within 4, 0.1", window=4, proximity=0.1),
    Variant("any two query words within 4, 0.3", window=4, proximity=0.3),
    Variant("any two query words within 8, 0.1", window=8, proximity=0.1),
    Variant("chunks of a unit: best + 0.1 x the others", sum_weight=0.1),
    Variant("chunks of a unit: best + 0.25 x the others", sum_weight=0.25),
    Variant("hyphenated query words also as phrases, 0.5", compound=0.5),
    Variant("hyphenated query words also as phrases, 1.0", compound=1.0),
    Variant("feedback: 10 terms of the best 10, 0.3", feedback_terms=10, feedback_weight=0.3),
    Variant("feedback: 20 terms of the best 10, 1.0", feedback_terms=20, feedback_weight=1.0),
    Variant("BM25+, delta 0.5", delta=0.5),
    Variant("BM25+, delta 1.0", delta=1.0),
    Variant("BM25L, delta 0.5", bm25l=True, delta=0.5),
    Variant("BM25L, delta 0.5, k1 1.5", bm25l=True, delta=0.5, k1=1.5),
    *[Variant(f"Dirichlet query likelihood, mu {mu}", mu=mu) for mu in (500, 1000, 1500, 2000)],
    *[Variant(f"Dirichlet query likelihood, mu {mu}", mu=mu) for mu in (100, 250)],
    Variant("axiomatic F2-EXP, k 0.35, s 0.5", f2exp=0.35),
    *[Variant(f"idf to the power {p}", idf_power=p) for p in (0.8, 1.2, 1.5)],
    *[Variant(f"coordination: x idf share matched ^ {c}", coord=c) for c in (0.25, 0.5, 1.0)],
    Variant("log tf (1 + ln tf)", log_tf=True),
    Variant("log tf, k1 0.9", log_tf=True, k1=0.9),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="SciFact (BEIR folder)")
    parser.add_argument("--only", default="", help="labels containing this text only (a|b: either)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="grid-lexical-") as tmp:
        sci_test, docs = grid.corpora(args.dataset, Path(tmp), "test")
        sci_train = grid.corpora(args.dataset, Path(tmp), "train")[0]
        indexes = [build(c) for c in (sci_train, sci_test, docs)]
    print("| variant | SciFact train | SciFact test | docs |")
    print("|---|---|---|---|")
    for variant in GRID:
        if args.only and not any(part in variant.label for part in args.only.split("|")):
            continue
        cells = []
        for index in indexes:
            run = {qid: rank(index, qid, variant) for qid in index.queries}
            cells.append(f"{evaluate(run, index.qrels)['ndcg@10']:.4f}")
        print(f"| {variant.label} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
