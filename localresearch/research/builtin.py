"""The offline engine: deterministic scoping, extractive summaries, coverage-based gaps and an
extractive report, all from the passages retrieval found (no model, no network)."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import Counter
from collections.abc import AsyncIterator, Sequence

from localresearch import extractive
from localresearch.research.citations import passage_supports
from localresearch.research.report import extractive_paragraphs
from localresearch.research.types import DimensionResult, Evaluation, Point, Source, StepUsage

FALLBACK_ASPECTS = (
    "Background and definitions",
    "Evidence and findings",
    "Methods and measurements",
    "Limitations and open questions",
    "Applications and implications",
    "Related work",
)
_SENTENCES_PER_SUMMARY = 4


def _surface_forms(passages: Sequence[Source]) -> dict[str, Counter[str]]:
    forms: dict[str, Counter[str]] = {}
    for source in passages:
        for word in extractive.words(source.passage):
            lower = word.lower()
            if lower in extractive.STOPWORDS or len(lower) < 4 or lower.isdigit():
                continue
            forms.setdefault(extractive.stem(lower), Counter())[lower] += 1
    return forms


def _bigrams(passages: Sequence[Source]) -> Counter[tuple[str, str]]:
    """Adjacent content-word pairs (stemmed), for two-word dimension labels."""
    pairs: Counter[tuple[str, str]] = Counter()
    for source in passages:
        seq = [w.lower() for w in extractive.words(source.passage)]
        for a, b in itertools.pairwise(seq):
            if a in extractive.STOPWORDS or b in extractive.STOPWORDS:
                continue
            if len(a) < 3 or len(b) < 3 or a.isdigit() or b.isdigit():
                continue
            pairs[(extractive.stem(a), extractive.stem(b))] += 1
    return pairs


def vocabulary(passages: Sequence[Source], exclude: set[str]) -> list[tuple[str, set[int]]]:
    """Salient terms of the retrieved passages, best first, with the passages containing each.

    A term is salient when several passages share it but not all (document frequency weighted by
    an idf over the retrieved set, and by how early the passages it appears in ranked)."""
    where: dict[str, set[int]] = {}
    for index, source in enumerate(passages):
        for term in set(extractive.terms(source.passage)):
            if term in exclude or len(term) < 4 or term.isdigit():
                continue
            where.setdefault(term, set()).add(index)
    n = len(passages)
    scored: list[tuple[float, str]] = []
    for term, docs in where.items():
        if len(docs) < 2 or len(docs) > max(2, int(n * 0.8)):
            continue
        rank_weight = sum(1.0 / math.sqrt(1 + i) for i in docs)
        scored.append((-(rank_weight * math.log(1 + n / len(docs))), term))
    scored.sort()
    return [(term, where[term]) for _, term in scored]


def _label(
    term: str, forms: dict[str, Counter[str]], pairs: Counter[tuple[str, str]], used: set[str]
) -> str:
    def surface(stemmed: str) -> str:
        counter = forms.get(stemmed)
        return counter.most_common(1)[0][0] if counter else stemmed

    best = max(
        ((count, pair) for pair, count in pairs.items() if term in pair and count >= 2),
        default=None,
        key=lambda item: (item[0], item[1]),
    )
    if best is not None and not (set(best[1]) - {term}) & used:
        words = [surface(part) for part in best[1]]
    else:
        words = [surface(term)]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def scope_dimensions(query: str, passages: Sequence[Source], count: int) -> list[str]:
    """Dimensions from the question's terms and the vocabulary of what retrieval found."""
    qterms = set(extractive.query_terms(query))
    forms = _surface_forms(passages)
    pairs = _bigrams(passages)
    chosen: list[str] = []
    covered: list[set[int]] = []
    used: set[str] = set()
    for term, docs in vocabulary(passages, qterms):
        if len(chosen) >= count:
            break
        if any(len(docs & c) / len(docs | c) > 0.6 for c in covered):
            continue  # mostly the same passages as a chosen dimension: not a new angle
        label = _label(term, forms, pairs, used | qterms)
        if label.lower() in (c.lower() for c in chosen):
            continue
        chosen.append(label)
        covered.append(docs)
        used.update(extractive.terms(label))
    for aspect in FALLBACK_ASPECTS:
        if len(chosen) >= count:
            break
        chosen.append(aspect)
    return chosen


def summarise_sources(
    query: str, dimension: str, index: int, sources: Sequence[Source]
) -> DimensionResult:
    """Pick the sentences that best answer the dimension; each stays tied to its passage."""
    sentences: list[extractive.Sentence] = []
    for i, source in enumerate(sources):
        sentences.extend(extractive.split_sentences(source.passage, source=i))
    wanted = list(dict.fromkeys(extractive.query_terms(dimension) + extractive.query_terms(query)))
    weights = [1.0 / (1 + i) for i in range(len(sources))]
    scored = extractive.score_sentences(sentences, wanted, source_weights=weights)
    chosen = [
        s
        for s in extractive.select_sentences(scored, limit=_SENTENCES_PER_SUMMARY)
        if passage_supports(sources[s.sentence.source].passage, s.sentence.text)
    ]
    if not chosen:
        return DimensionResult(
            dimension=dimension,
            index=index,
            summary="No retrieved passage addresses this dimension directly.",
            key_finding="",
            sources=list(sources),
        )
    points = [
        Point(item.sentence.text, sources[item.sentence.source].id)
        for group in extractive.reading_order(chosen)
        for item in group
    ]
    return DimensionResult(
        dimension=dimension,
        index=index,
        summary=" ".join(p.text for p in points),
        key_finding=chosen[0].sentence.text,
        sources=list(sources),
        points=points,
    )


def find_gaps(
    query: str, results: Sequence[DimensionResult], passages: Sequence[Source], budget: int
) -> Evaluation:
    """Coverage-based gaps: question terms no finding mentions, and salient vocabulary of the
    retrieved passages that no dimension has covered yet (those become new dimensions)."""
    covered_text = " ".join(
        [r.dimension for r in results] + [p.text for r in results for p in r.points]
    )
    covered = set(extractive.terms(covered_text))
    gaps: list[str] = []
    for term in extractive.query_terms(query):
        if term not in covered:
            gaps.append(f"No finding yet addresses '{term}' from the question")
    forms = _surface_forms(passages)
    pairs = _bigrams(passages)
    labels = {r.dimension.lower() for r in results}
    new: list[str] = []
    qterms = set(extractive.query_terms(query))
    for term, _docs in vocabulary(passages, qterms | covered):
        if len(new) >= budget:
            break
        label = _label(term, forms, pairs, qterms)
        if label.lower() in labels or any(label.lower() == n.lower() for n in new):
            continue
        gaps.append(f"Retrieved passages discuss '{label}', which no dimension covers")
        new.append(label)
    return Evaluation(gaps=gaps, new_dimensions=new)


class BuiltinEngine:
    """The Engine for `llm.provider = "builtin"`: CPU work runs in a thread, off the loop."""

    def __init__(self, gap_dimensions: int = 2) -> None:
        self.gap_dimensions = gap_dimensions

    async def scope(
        self, query: str, passages: list[Source], count: int, usage: StepUsage
    ) -> list[str]:
        return await asyncio.to_thread(scope_dimensions, query, passages, count)

    async def summarise(
        self, query: str, dimension: str, index: int, sources: list[Source], usage: StepUsage
    ) -> DimensionResult:
        return await asyncio.to_thread(summarise_sources, query, dimension, index, sources)

    async def evaluate(
        self,
        query: str,
        results: list[DimensionResult],
        passages: list[Source],
        iteration: int,
        usage: StepUsage,
    ) -> Evaluation:
        return await asyncio.to_thread(find_gaps, query, results, passages, self.gap_dimensions)

    async def synthesise(
        self,
        query: str,
        results: list[DimensionResult],
        numbering: dict[str, int],
        usage: StepUsage,
    ) -> AsyncIterator[str]:
        for paragraph in extractive_paragraphs(query, results, numbering):
            yield paragraph
