"""A model's findings made fit for the builtin engine's report, when that report stands in for
the model's (nothing the model's report said was backed by a source).

The builtin report states each point of a dimension's findings with the source it names. A
model's points name the wrong passage, repeat one another across dimensions and within one, or
say what no passage holds; so each of their sentences is checked against the sources as a model's
report or a chat answer is (localresearch.citations.align): cited to the passage that supports it
or left out, and kept once; a fragment is no statement, as in the builtin report. A dimension
none of whose statements a source supports is summarised from its sources by the builtin engine,
as when the model's findings for it were unusable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from localresearch import extractive
from localresearch.citations import AlignedSentence, align
from localresearch.research.builtin import summarise_sources, whole_sentence
from localresearch.research.citations import normalise, source_passages
from localresearch.research.types import DimensionResult, Point, Source

# Two statements sharing this much of their content words say the same thing (as the report
# judges two key findings).
_SAME = 0.6
# A label a small model puts before a point, often a passage's title ("WAL mode: Writes pages
# back…"): its words are no part of the statement, nor of what a passage must hold for it.
_LABEL = re.compile(
    r"^\s*(?:[-*]\s+)?\**[A-Z][\w'\u2019-]*(?: [\w'\u2019-]+){0,3}\**:\**\s+(?=[A-Z])"
)


@dataclass
class _Said:
    """The statements the report makes so far, each with where in a passage its support
    starts: two statements whose support starts at the same sentence of a passage (a model's
    paraphrases of one sentence) say the same thing."""

    made: list[tuple[Point, tuple[str, int] | None]] = field(default_factory=list)

    def earlier(self, text: str, anchor: tuple[str, int] | None = None) -> Point | None:
        """The statement already made that `text` repeats, if any."""
        plain = _plain(text)
        for point, where in self.made:
            if anchor is not None and anchor == where:
                return point
            if plain == _plain(point.text) or extractive.similarity(text, point.text) >= _SAME:
                return point
        return None

    def state(self, point: Point, anchor: tuple[str, int] | None = None) -> Point:
        """The point to state: the earlier one it repeats, else itself (now made)."""
        found = self.earlier(point.text, anchor)
        if found is None:
            self.made.append((point, anchor))
        return found or point


def checked_findings(
    query: str, results: list[DimensionResult], ordered: list[Source]
) -> list[DimensionResult]:
    """The dimensions' findings with only the sentences a source supports, each cited to that
    source; a sentence another dimension (or this one) already gave is kept as the statement
    made first, so the report says it once and names a dimension that adds nothing of its own.
    The key finding is the first of its sentences that holds, else the first point."""
    passages = source_passages(ordered)
    numbers = {source.id: n for n, source in enumerate(ordered, start=1)}
    said = _Said()
    checked: list[DimensionResult] = []
    for result in results:
        key_text = _LABEL.sub("", result.key_finding)
        texts = [(_LABEL.sub("", p.text), numbers.get(p.source_id)) for p in result.points]
        texts += [(key_text, None), (_LABEL.sub("", result.summary), None)]
        points: list[Point] = []
        key = ""
        for text, number in texts:
            for sentence in align(f"{text} [{number}]" if number else text, passages).sentences:
                if not (sentence.claim and sentence.supported and whole_sentence(sentence.text)):
                    continue  # unsupported, or a fragment ("The Pi-hole's DNS resolver")
                source = ordered[sentence.cited[0] - 1]
                point = said.state(Point(sentence.text, source.id), _anchor(source, sentence))
                if point not in points:
                    points.append(point)
                if text == key_text and not key:
                    key = point.text
        if not points and result.sources:
            builtin = summarise_sources(query, result.dimension, result.index, result.sources)
            points = list(dict.fromkeys(said.state(p) for p in builtin.points))
            key = next((p.text for p in points if p.text == builtin.key_finding), "")
        key = key or (points[0].text if points else "")
        summary = " ".join(p.text for p in points)
        checked.append(replace(result, summary=summary, key_finding=key, points=points))
    return checked


def _plain(text: str) -> str:
    return normalise(text).rstrip(".!?")


def _anchor(source: Source, sentence: AlignedSentence) -> tuple[str, int] | None:
    """The sentence of its passage that a statement rests on: the one supporting it, or of
    two adjacent ones, the one holding more of its words."""
    n = sentence.cited[0] if sentence.cited else 0
    first = sentence.quotes.get(n)
    if first is None:
        return None
    second = sentence.quotes.get(-n)
    if second is not None:
        own = set(extractive.terms(sentence.text))
        if len(own & set(extractive.terms(second.text))) > len(
            own & set(extractive.terms(first.text))
        ):
            first = second
    return (source.id, first.start)
