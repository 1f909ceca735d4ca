"""A small grid of index-side ranking parameters, each judged on SciFact and the docs corpus.

    .venv/bin/python scripts/grid_memory.py --dataset ../shared/datasets/scifact

What the index controls (FTS5 fixes bm25's k1 = 1.2 and b = 0.75): the chunk size and overlap,
the column weights, the tokenizer, the stopwords of a query. Every row is one configuration,
scored exactly (every matching chunk ranked by bm25()) on both corpora with the same code: a
SciFact document and a docs section take their best chunk. Nothing is chosen per corpus; the
printed table is the one in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sqlite3
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import judge_memory as judged
from bench_memory import Qrels, evaluate, load_jsonl, load_qrels, write_corpus

from localresearch.memory import query as memory_query
from localresearch.memory.chunking import Chunk
from localresearch.memory.prepare import prepare_file
from localresearch.memory.schema import RANK_WEIGHTS, TOKENIZER

# The English stoplist queries dropped until 2026-12-02 (the "stopwords" rows).
STOPLIST = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves""".split()  # noqa: SIM905
)


class Config(NamedTuple):
    label: str
    chunk_chars: int = 1200
    overlap: int = 150
    weights: tuple[float, float] = (RANK_WEIGHTS[0], RANK_WEIGHTS[1])
    tokenizer: str = TOKENIZER
    stopwords: bool = False  # drop STOPLIST's words (unless a query has no other)
    pairs: bool = False  # adjacent content words of the query also as "phrases"
    merge: str = "max"  # a document's (section's) score: its best chunk's, or their sum
    # Where a section's title is indexed: "both" (the heading column, and its own line at the
    # top of the section's first chunk), "column" (that line taken out of the content) or
    # "content" (the heading column left empty).
    heading: str = "both"
    snowball: bool = False  # words stemmed by Snowball's English (Porter2) before FTS5 (PyStemmer)
    exact: float = 0.0  # plus this share of bm25() on the words as written (a unicode61 table)
    greek: bool = False  # Greek letters spelled out ("TNF-α" as "TNF- alpha "), chunks and queries


_GREEK = re.compile("[\u0370-\u03ff]")


def spelled(text: str) -> str:
    """Greek letters as their English names, so "α" and "alpha" match each other."""

    def name(match: re.Match[str]) -> str:
        words = unicodedata.name(match.group(0), "").split()
        return f" {words[-1].lower()} " if "LETTER" in words else match.group(0)

    return _GREEK.sub(name, text)


_HEADING_LINES = re.compile(r"\A(?:[ ]{0,3}#{1,6}[ \t][^\n]*\n?\s*)+")
_TOKEN = re.compile(r"[^\W_]+")


def snowball() -> Callable[[str], str]:
    """Text as Snowball's English stemmer sees it: unicode61's tokens, lower-cased, without
    diacritics, each stemmed, joined by spaces (then indexed by unicode61 alone)."""
    import Stemmer  # PyStemmer: a C build of the Snowball stemmers

    stem = Stemmer.Stemmer("english")

    def plain(word: str) -> str:
        decomposed = unicodedata.normalize("NFKD", word)
        return "".join(c for c in decomposed if not unicodedata.combining(c))

    def apply(text: str) -> str:
        return " ".join(stem.stemWords([plain(w) for w in _TOKEN.findall(text.lower())]))

    return apply


def prepared(chunk: Chunk, config: Config, stem: Callable[[str], str] | None) -> tuple[str, str]:
    heading, content = chunk.heading, chunk.content
    if config.heading == "column":
        content = _HEADING_LINES.sub("", content) or content
    elif config.heading == "content":
        heading = ""
    if config.greek:
        heading, content = spelled(heading), spelled(content)
    if stem is not None:
        heading, content = stem(heading), stem(content)
    return heading, content


class Corpus(NamedTuple):
    name: str
    files: list[Path]
    queries: dict[str, str]
    qrels: Qrels
    unit: Callable[[str, str], str]  # (file, heading) -> judged id


def chunks_of(files: list[Path], chunk_chars: int, overlap: int) -> list[tuple[str, Chunk]]:
    out: list[tuple[str, Chunk]] = []
    for path in files:
        _, made = prepare_file(str(path), None, chunk_chars, overlap)
        assert isinstance(made, list)
        out.extend((path.name, chunk) for chunk in made)
    return out


def terms_of(text: str, stopwords: bool, pairs: bool = False) -> list[str]:
    words = memory_query._WORD.findall(text.lower())
    terms = memory_query.parse_terms(text)
    if stopwords:
        kept = [t for t in terms if t.strip('"') not in STOPLIST]
        terms = kept or terms
    if pairs:
        stop = STOPLIST
        for a, b in itertools.pairwise(words):
            if a not in stop and b not in stop:
                terms.append(f'"{a} {b}"')
    return list(dict.fromkeys(terms))


def score(corpus: Corpus, config: Config) -> tuple[float, int]:
    chunks = chunks_of(corpus.files, config.chunk_chars, config.overlap)
    stem = snowball() if config.snowball else None
    tokenizer = "unicode61 remove_diacritics 2" if stem else config.tokenizer
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE VIRTUAL TABLE f USING fts5(heading, content, tokenize='{tokenizer}')")
    started = time.process_time()
    rows = [(i, *prepared(c, config, stem)) for i, (_, c) in enumerate(chunks)]
    prepared_s = time.process_time() - started
    conn.executemany("INSERT INTO f (rowid, heading, content) VALUES (?, ?, ?)", rows)
    inserted_s = time.process_time() - started - prepared_s
    if stem is not None:
        # What stemming in Python would add to indexing: against the inserts of the same rows
        # (unicode61) and those of the shipped porter table (the same chunks, unstemmed).
        plain = sqlite3.connect(":memory:")
        plain.execute(
            f"CREATE VIRTUAL TABLE p USING fts5(heading, content, tokenize='{TOKENIZER}')"
        )
        began = time.process_time()
        plain.executemany(
            "INSERT INTO p (rowid, heading, content) VALUES (?, ?, ?)",
            [(i, c.heading, c.content) for i, (_, c) in enumerate(chunks)],
        )
        porter_s = time.process_time() - began
        plain.close()
        print(
            f"  ({corpus.name}: Snowball stemming {prepared_s:.2f} CPU-s, its inserts"
            f" {inserted_s:.2f} s; the porter table's inserts {porter_s:.2f} s)",
            flush=True,
        )
    bm25 = f"bm25(f, {config.weights[0]}, {config.weights[1]})"
    forms = None
    if config.exact:
        forms = sqlite3.connect(":memory:")
        forms.execute(
            "CREATE VIRTUAL TABLE f USING fts5(heading, content,"
            " tokenize='unicode61 remove_diacritics 2')"
        )
        forms.executemany("INSERT INTO f (rowid, heading, content) VALUES (?, ?, ?)", rows)
    run: dict[str, dict[str, float]] = {}
    for qid, text in corpus.queries.items():
        terms = terms_of(spelled(text) if config.greek else text, config.stopwords, config.pairs)
        if stem is not None:
            terms = list(dict.fromkeys(f'"{stem(t.strip(chr(34)))}"' for t in terms))
            terms = [t for t in terms if t != '""']
        rows = []
        if terms and forms is not None:  # every match of either table, scored by both
            sql = f"SELECT rowid, {bm25} FROM f WHERE f MATCH ?"
            both: dict[int, float] = {}
            for table, share in ((conn, 1.0), (forms, config.exact)):
                for rowid, value in table.execute(sql, (" OR ".join(terms),)):
                    both[rowid] = both.get(rowid, 0.0) + share * value
            rows = sorted(both.items(), key=lambda item: item[1])[:400]
        elif terms:
            sql = f"SELECT rowid, {bm25} AS s FROM f WHERE f MATCH ? ORDER BY s LIMIT 400"
            rows = conn.execute(sql, (" OR ".join(terms),)).fetchall()
        scores: dict[str, float] = {}
        for rowid, value in rows:
            file, chunk = chunks[rowid]
            unit = corpus.unit(file, chunk.heading)
            if config.merge == "sum":
                scores[unit] = scores.get(unit, 0.0) - value
            else:
                scores.setdefault(unit, -value)
        if config.merge == "sum":
            scores = dict(sorted(scores.items(), key=lambda kv: -kv[1]))
        run[qid] = dict(list(scores.items())[:100])
    conn.close()
    if forms is not None:
        forms.close()
    return evaluate(run, corpus.qrels)["ndcg@10"], len(chunks)


def corpora(dataset: Path, work: Path, split: str = "test") -> list[Corpus]:
    docs = work / "scifact-docs"
    write_corpus(load_jsonl(dataset / "corpus.jsonl"), docs)
    queries = {q["_id"]: q["text"] for q in load_jsonl(dataset / "queries.jsonl")}
    sci_qrels = load_qrels(dataset / "qrels" / f"{split}.tsv")
    doc_queries = {q["_id"]: q["text"] for q in load_jsonl(judged.DOCS_EVAL / "queries.jsonl")}
    return [
        Corpus(
            "scifact",
            sorted(docs.iterdir()),
            {q: queries[q] for q in sci_qrels},
            sci_qrels,
            lambda file, heading: Path(file).stem,
        ),
        Corpus(
            "docs",
            sorted(judged.DOCS.glob("*.md")),
            doc_queries,
            load_qrels(judged.DOCS_EVAL / "qrels" / "test.tsv"),
            judged.section_id,
        ),
    ]


EXACT = (0.1, 0.25, 0.5)  # shares of the unstemmed table's score (the "as written" rows)
GRID = [
    Config("shipped (1200 chars, overlap 150, weights 1/1, porter, every word)"),
    Config("stopwords dropped (the default until 2026-12-02)", stopwords=True),
    Config("chunk 1600", chunk_chars=1600),
    Config("chunk 2000", chunk_chars=2000),
    Config("chunk 3000", chunk_chars=3000),
    Config("overlap 0", overlap=0),
    Config("overlap 300", overlap=300),
    Config("heading weight 0.5", weights=(0.5, 1.0)),
    Config("heading weight 2", weights=(2.0, 1.0)),
    Config("no stemming (unicode61)", tokenizer="unicode61 remove_diacritics 2"),
    Config("adjacent content words also as phrases", pairs=True),
    Config("chunks of a document summed", merge="sum"),
    Config("a section's title in the heading column only (not its line again)", heading="column"),
    Config("a section's title in the content only (no heading column)", heading="content"),
    Config("Snowball (Porter2) stemming, PyStemmer, instead of porter", snowball=True),
    *(
        Config(f"porter plus {w} x bm25() of the words as written", exact=w)
        for w in (0.1, 0.25, 0.5)
    ),
    Config("Greek letters spelled out (alpha for α), chunks and queries", greek=True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="SciFact (BEIR folder)")
    parser.add_argument("--only", default="", help="labels containing this text only (a|b)")
    parser.add_argument("--split", default="test", help="SciFact qrels (train: 809 queries)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="grid-memory-") as tmp:
        both = corpora(args.dataset, Path(tmp), args.split)
        print("| configuration | SciFact nDCG@10 (chunks) | docs nDCG@10 (chunks) |")
        print("|---|---|---|")
        for config in GRID:
            if args.only and not any(part in config.label for part in args.only.split("|")):
                continue
            cells = []
            for corpus in both:
                ndcg, count = score(corpus, config)
                cells.append(f"{ndcg:.4f} ({count})")
            print(f"| {config.label} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
