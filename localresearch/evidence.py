"""What the notes say, shown beside a model's answer they do not back.

A small model often restates a question in words no passage holds; the citation check rightly
flags those sentences, and the answer would then cite nothing, or cite a weaker passage than the
search's best. Rather than loosen the check, the answer gets one more paragraph, clearly
labelled, that quotes the strongest passage's best sentence (and, when most of the answer is
unsupported, the next best one) verbatim with its `[n]`. The model's sentences keep their
flags; the quoted ones are marked `quoted` so nobody takes them for the model's words.

The rule (the same for chat, `ask`, the query API and research reports):
- quotes come only from passages that hold the question's topic (its distinctive words, as
  `extractive.holds_topic` decides for the builtin engine): a passage sharing one common word
  with the question ("long") is no answer to quote;
- the strongest passage is the one holding most of the question's topic (its terms weighted
  by rarity), the search's better one on a tie, leaving the daemon's own daily logs aside;
- `unsupported`: fewer than half of the answer's claim sentences are supported (or it makes
  no claim and cites nothing) while the passages hold a sentence that matches the question;
- `strongest_uncited`: the answer cites no passage that holds the question's topic as well as
  the strongest one does;
- `nothing_found` (chat and `ask` only): passages were found but none holds the question's
  topic, and most of the answer is unsupported: instead of a quote, the answer says plainly
  that the notes hold nothing on it, as the builtin engine does.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from localresearch.citations import AlignedSentence, Alignment, Passage
from localresearch.extractive import (
    ScoredSentence,
    holds_weighted,
    is_boilerplate,
    query_terms,
    score_sentences,
    similarity,
    split_sentences,
    terms,
    topic_weights,
)
from localresearch.memory.kinds import is_daily_log
from localresearch.providers.builtin import nothing_found

LABEL = "Quoted from your notes"
REPORT_LABEL = "Quoted from the sources"
MAX_QUOTES = 2  # the strongest passage's best sentence, and one more when most is unsupported
RELATIVE_FLOOR = 0.25  # a second quote scores at least this share of the best match
REDUNDANCY = 0.6  # a quote saying what the answer's supported sentences say adds nothing
UNSUPPORTED = "unsupported"
STRONGEST_UNCITED = "strongest_uncited"
NOTHING_FOUND = "nothing_found"  # no passage holds the question's topic: nothing to quote
# The daemon's own record of past answers is not evidence (it is indexed like a note).


@dataclass(frozen=True)
class Quote:
    """One sentence quoted verbatim from a passage, with the number the passage carries."""

    n: int
    text: str
    rank: int


@dataclass(frozen=True)
class Evidence:
    """Why the quotes were added, and the quotes (strongest passage first); NOTHING_FOUND has
    none: the notes hold nothing on `question`."""

    reason: str
    quotes: list[Quote]
    question: str = ""

    def paragraph(self, label: str = LABEL) -> str:
        """The labelled paragraph appended to the answer (each quote ends with its marker), or
        the plain statement that the notes hold nothing on the question."""
        if self.reason == NOTHING_FOUND:
            return nothing_found(self.question)
        body = " ".join(f"{_closed(q.text)} [{q.n}]" for q in self.quotes)
        return f"**{label}**: {body}"

    def to_dict(self) -> dict[str, Any] | None:
        """`done.evidence`: why, and the passages quoted; None for NOTHING_FOUND (nothing of
        the notes is quoted: the statement is the daemon's own, `claim: false`)."""
        if self.reason == NOTHING_FOUND:
            return None
        return {"reason": self.reason, "citations": list(dict.fromkeys(q.n for q in self.quotes))}


def reason_for(
    sentences: Sequence[AlignedSentence],
    strongest: int | None,
    answering: Collection[int] = (),
) -> str | None:
    """Which part of the rule asks for quotes (None: the answer stands on its own).
    `answering`: passages that hold the question's topic as well as the strongest one does;
    citing any of them is citing the strongest."""
    claims = [s for s in sentences if s.claim]
    supported = sum(1 for s in claims if s.supported)
    # A short answer that makes no claim but points at a passage ("Steep it [1].") stands.
    cited = {n for s in sentences for n in s.cited}
    if 2 * supported < len(claims) or not (claims or cited):
        return UNSUPPORTED
    if strongest is not None and strongest not in cited and not (cited & set(answering)):
        return STRONGEST_UNCITED
    return None


def topic_shares(question: str, passages: Sequence[Passage]) -> dict[int, float]:
    """Per passage that holds the question's topic (extractive.holds_topic, over the passage
    with its heading): the share of the question's terms it holds, weighted by rarity among
    the passages' sentences as holds_topic weighs them."""
    qterms = query_terms(question)
    if not qterms:
        return {}
    sentences = [s for p in passages for s in split_sentences(p.text)]
    idf = topic_weights(qterms, sentences)
    total = sum(idf.values()) or 1.0
    shares: dict[int, float] = {}
    for p in passages:
        bag = set(terms(f"{p.heading}\n{p.text}"))
        if holds_weighted(idf, bag):
            shares[p.n] = sum(w for t, w in idf.items() if t in bag) / total
    return shares


def strongest_passage(
    passages: Sequence[Passage], shares: dict[int, float] | None = None
) -> Passage | None:
    """The note (not a daily log of past answers) that holds the most of the question's topic,
    the search's better one on a tie; without `shares`, the search's best note."""
    notes = [p for p in passages if not is_daily_log(p.file)]
    if shares is not None:
        notes = [p for p in notes if p.n in shares]
        return min(notes, key=lambda p: (-shares[p.n], p.rank, p.n)) if notes else None
    return min(notes, key=lambda p: (p.rank, p.n)) if notes else None


def evidence_for(
    question: str,
    sentences: Sequence[AlignedSentence],
    passages: Sequence[Passage],
    *,
    say_nothing_found: bool = False,
) -> Evidence | None:
    """The quotes the rule asks for, given the answer's checked sentences, or None (the answer
    stands, or no passage matches the question). Quotes come only from passages that hold the
    question's topic; when passages were found but none does, and most of the answer is
    unsupported, with `say_nothing_found` the evidence is the plain statement that the notes
    hold nothing on it."""
    if not query_terms(question):
        return None  # "How?": no topic to look for, nor to say the notes lack
    notes = sorted((p for p in passages if not is_daily_log(p.file)), key=lambda p: (p.rank, p.n))
    shares = topic_shares(question, notes)
    strongest = strongest_passage(notes, shares)
    if strongest is None:
        # Said where a quote would have stood: notes were found, the model claimed something
        # they do not back, and none of them is about the question ("Hello!" needs nothing).
        unbacked = any(s.claim and not s.supported for s in sentences)
        if say_nothing_found and notes and unbacked and reason_for(sentences, None):
            return Evidence(NOTHING_FOUND, [], question)
        return None
    top_share = shares[strongest.n]
    answering = [n for n, share in shares.items() if share >= top_share]
    reason = reason_for(sentences, strongest.n, answering)
    if reason is None:
        return None
    holders = [p for p in notes if p.n in shares]
    best = _best_sentences(question, holders)
    if not best:
        return None
    said = [s.text for s in sentences if s.claim and s.supported]
    quotes: list[Quote] = []
    top = next((s for s in best if holders[s.sentence.source].n == strongest.n), None)
    if top is not None and not _redundant(top.sentence.text, said):
        quotes.append(_quote(top, holders))
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
        quotes.append(_quote(item, holders))
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
