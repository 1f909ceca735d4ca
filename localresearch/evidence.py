"""What the notes say, shown beside a model's answer they do not back.

A small model often restates a question in words no passage holds; the citation check rightly
flags those sentences, and the answer would then cite nothing, or cite a weaker passage than the
search's best. Rather than loosen the check, the answer gets one more paragraph, clearly
labelled, that quotes the strongest passage's best sentence (and, when most of the answer is
unsupported, the next best one) verbatim with its `[n]`. The model's sentences keep their
flags; the quoted ones are marked `quoted` so nobody takes them for the model's words.

The rule (the same for chat, `ask`, the query API and research reports):
- `unsupported`: fewer than half of the answer's claim sentences are supported (or it makes
  no claim and cites nothing) while the passages hold a sentence that matches the question;
- `strongest_uncited`: the answer does not cite the strongest passage (the search's best,
  leaving the daemon's own daily logs aside) although that passage matches the question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from localresearch.citations import AlignedSentence, Alignment, Passage
from localresearch.extractive import (
    ScoredSentence,
    is_boilerplate,
    score_sentences,
    similarity,
    split_sentences,
)
from localresearch.memory.kinds import is_daily_log

LABEL = "Quoted from your notes"
REPORT_LABEL = "Quoted from the sources"
MAX_QUOTES = 2  # the strongest passage's best sentence, and one more when most is unsupported
RELATIVE_FLOOR = 0.25  # a second quote scores at least this share of the best match
REDUNDANCY = 0.6  # a quote saying what the answer's supported sentences say adds nothing
UNSUPPORTED = "unsupported"
STRONGEST_UNCITED = "strongest_uncited"
# The daemon's own record of past answers is not evidence (it is indexed like a note).


@dataclass(frozen=True)
class Quote:
    """One sentence quoted verbatim from a passage, with the number the passage carries."""

    n: int
    text: str
    rank: int


@dataclass(frozen=True)
class Evidence:
    """Why the quotes were added, and the quotes (strongest passage first)."""

    reason: str
    quotes: list[Quote]

    def paragraph(self, label: str = LABEL) -> str:
        """The labelled paragraph appended to the answer (each quote ends with its marker)."""
        body = " ".join(f"{_closed(q.text)} [{q.n}]" for q in self.quotes)
        return f"**{label}**: {body}"


def reason_for(sentences: Sequence[AlignedSentence], strongest: int | None) -> str | None:
    """Which part of the rule asks for quotes (None: the answer stands on its own)."""
    claims = [s for s in sentences if s.claim]
    supported = sum(1 for s in claims if s.supported)
    # A short answer that makes no claim but points at a passage ("Steep it [1].") stands.
    cited = {n for s in sentences for n in s.cited}
    if 2 * supported < len(claims) or not (claims or cited):
        return UNSUPPORTED
    if strongest is not None and strongest not in cited:
        return STRONGEST_UNCITED
    return None


def strongest_passage(passages: Sequence[Passage]) -> Passage | None:
    """The search's best passage that is a note, not a daily log of past answers."""
    notes = [p for p in passages if not is_daily_log(p.file)]
    return min(notes, key=lambda p: (p.rank, p.n)) if notes else None


def evidence_for(
    question: str, sentences: Sequence[AlignedSentence], passages: Sequence[Passage]
) -> Evidence | None:
    """The quotes the rule asks for, given the answer's checked sentences, or None (the answer
    stands, or no passage matches the question)."""
    strongest = strongest_passage(passages)
    if strongest is None:
        return None
    reason = reason_for(sentences, strongest.n)
    if reason is None:
        return None
    notes = sorted((p for p in passages if not is_daily_log(p.file)), key=lambda p: (p.rank, p.n))
    best = _best_sentences(question, notes)
    if not best:
        return None
    said = [s.text for s in sentences if s.claim and s.supported]
    quotes: list[Quote] = []
    top = next((s for s in best if notes[s.sentence.source].n == strongest.n), None)
    if top is not None and not _redundant(top.sentence.text, said):
        quotes.append(_quote(top, notes))
    if reason == STRONGEST_UNCITED:
        return Evidence(reason, quotes) if quotes else None
    floor = best[0].score * RELATIVE_FLOOR
    for item in best:
        if len(quotes) >= MAX_QUOTES:
            break
        if item.score < floor or item is top:
            continue
        if _redundant(item.sentence.text, said + [q.text for q in quotes]):
            continue
        quotes.append(_quote(item, notes))
    quotes.sort(key=lambda q: (q.rank, q.n))
    return Evidence(reason, quotes) if quotes else None


def mark_quoted(checked: Alignment, offset: int) -> None:
    """Sentences from `offset` on are the added quotes, not the model's words."""
    for sentence in checked.sentences:
        sentence.quoted = sentence.start >= offset


def _best_sentences(question: str, notes: Sequence[Passage]) -> list[ScoredSentence]:
    sentences = []
    for index, passage in enumerate(notes):
        sentences.extend(split_sentences(passage.text, first_line=passage.line_start, source=index))
    scored = score_sentences(sentences, question)
    return [s for s in scored if s.score > 0 and not is_boilerplate(s.sentence)]


def _quote(item: ScoredSentence, notes: Sequence[Passage]) -> Quote:
    passage = notes[item.sentence.source]
    return Quote(passage.n, item.sentence.text, passage.rank)


def _redundant(text: str, others: Sequence[str]) -> bool:
    return any(similarity(text, other) > REDUNDANCY for other in others)


def _closed(text: str) -> str:
    """A quote ends as a sentence does, so the next one starts a sentence of its own."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
