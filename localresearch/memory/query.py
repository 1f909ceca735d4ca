"""Turning any user text into a safe FTS5 query: words, "phrases" and prefix* terms, OR-ed.

FTS5 has its own query language (AND/OR/NOT/NEAR, column filters, `^`, `*`, quotes); user text is
never passed through. Each word becomes a quoted string, so no input can be a syntax error.
"""

from __future__ import annotations

import re

from localresearch.errors import InvalidRequest
from localresearch.memory import grams

MAX_TERMS = 64
# Every word counts, common ones too: BM25's idf already weighs "the" near zero, and words
# such as "not", "more", "after" or "between" carry a claim's meaning. The English stoplist
# dropped until 2026-12-02 ranked lower on both judged corpora (docs/benchmarks.md); the
# planner (memory/ranking.py) keeps the commonest terms' cost bounded.

_TOKEN = re.compile(rf'"([^"]*)"|([\w{grams.MARKED_SCRIPTS}]+)(\*?)', re.UNICODE)
_WORD = re.compile(rf"[\w{grams.MARKED_SCRIPTS}]+", re.UNICODE)


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _split_unspaced(word: str) -> list[tuple[str, bool]]:
    """A word as unicode61 sees it may hold runs of an unspaced script (`sqlite同步`): those
    become character pairs (grams.py), the rest stays a word. (text, is a pair)"""
    if not grams.has_unspaced(word):
        return [(word, False)]
    out: list[tuple[str, bool]] = []
    for piece in re.split(f"({grams.UNSPACED.pattern}+)", word):
        if not piece:
            continue
        if grams.has_unspaced(piece):
            out.extend((pair, True) for run in grams.query_runs(piece) for pair in grams.pairs(run))
        else:
            out.append((piece, False))
    return out


def _phrase(words: list[str]) -> list[str]:
    """A quoted phrase's tokens, unspaced runs as their pairs (consecutive in `grams`)."""
    tokens: list[str] = []
    for word in words:
        tokens.extend(text for text, _ in _split_unspaced(word))
    return tokens


def parse_terms(text: str, prefix: bool = False) -> list[str]:
    """FTS5 query terms for the user's text: phrases, prefixes and plain words (lower-cased);
    with `prefix`, the last word also matches longer words (a query being typed)."""
    terms: list[str] = []
    plain: list[tuple[str, bool]] = []
    matches = list(_TOKEN.finditer(text))
    for index, match in enumerate(matches):
        phrase, word, star = match.groups()
        if phrase is not None:
            words = _phrase(_WORD.findall(phrase.lower()))
            if len(words) > 1:
                terms.append(_quote(" ".join(words)))
            elif words:
                plain.append((words[0], False))
        elif word:
            last = prefix and index == len(matches) - 1 and not text[match.end() :].strip()
            pieces = _split_unspaced(word.lower())
            for number, (piece, _) in enumerate(pieces):
                plain.append((piece, bool(star or last) and number == len(pieces) - 1))
    for word, star in plain:
        terms.append(_quote(word) + ("*" if star else ""))
    # A repeated word counts once (measured on SciFact train: +0.004 nDCG@10).
    return list(dict.fromkeys(terms))[:MAX_TERMS]


def by_budget(terms: list[str], df: dict[str, int], budget: int, limit: float) -> list[str]:
    """The rarest terms (document frequency <= limit) whose postings fit in `budget` rows; at
    least the rarest term. Terms found nowhere are dropped. Query order is kept."""
    present = [t for t in terms if df.get(t, 0) > 0]
    kept: set[str] = set()
    rows = 0
    for term in sorted(present, key=lambda t: df[t]):
        if kept and (df[term] > limit or rows + df[term] > budget):
            break
        kept.add(term)
        rows += df[term]
    return [t for t in present if t in kept]


def build_match(text: str) -> str | None:
    """The MATCH expression for `text`; None if it has no searchable word (e.g. only emoji).

    Raises InvalidRequest for an empty query, the one input that is the caller's mistake.
    """
    if not text or not text.strip():
        raise InvalidRequest("Query is empty: give some words to search for (parameter q)")
    terms = parse_terms(text)
    if not terms:
        return None
    return " OR ".join(terms)
