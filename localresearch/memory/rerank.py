"""Re-ranking of BM25 hits: a length prior (on by default), a recency boost and diversity (MMR)."""

from __future__ import annotations

import dataclasses
import re

from localresearch.memory.types import SearchHit

RECENCY_HALF_LIFE_DAYS = 30.0
LENGTH_PIVOT_CHARS = 1000.0
_WORD = re.compile(r"\w+")


def _words(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD.findall(text))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def length_factor(chars: int, exponent: float) -> float:
    """What a chunk's BM25 is multiplied by: (chars / 1000) ** exponent, which softens FTS5's
    fixed length normalisation (b = 0.75) that over-penalises long passages (SciFact train)."""
    return float((max(chars, 1) / LENGTH_PIVOT_CHARS) ** exponent)


def rerank(
    hits: list[SearchHit],
    mtimes: dict[int, float],
    recency_weight: float,
    mmr_lambda: float,
    now: float,
) -> list[SearchHit]:
    """Boost recently edited files, then pick hits greedily for relevance minus redundancy."""
    if recency_weight > 0:
        boosted = []
        for hit in hits:
            age_days = max(0.0, now - mtimes.get(hit.chunk_id, now)) / 86400
            factor = 1 + recency_weight * 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS)
            boosted.append(dataclasses.replace(hit, score=hit.score * factor))
        hits = sorted(boosted, key=lambda h: h.score, reverse=True)
    if mmr_lambda >= 1.0 or len(hits) < 2:
        return hits
    top = max(h.score for h in hits) or 1.0
    words = {h.chunk_id: _words(h.content) for h in hits}
    chosen: list[SearchHit] = []
    pool = list(hits)
    while pool:
        best = max(
            pool,
            key=lambda h: (
                mmr_lambda * h.score / top
                - (1 - mmr_lambda)
                * max((_jaccard(words[h.chunk_id], words[c.chunk_id]) for c in chosen), default=0.0)
            ),
        )
        chosen.append(best)
        pool.remove(best)
    return chosen
