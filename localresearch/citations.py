"""Every answer cited, whatever wrote it: align each sentence of an answer to the numbered passage
that supports it, correct wrong or missing `[n]` markers, flag what no passage supports.

A model is asked to cite `[n]`; small models forget, cite the wrong number, or cite nothing at
all. This module does not trust the markers: it splits the answer into sentences, measures how
much of each sentence a passage's sentences hold (content-word overlap weighted by rarity, and
embedding similarity when an embedder is given), keeps the markers that hold, replaces those that
do not with the passage that does, and marks a sentence no passage supports as unsupported.
Passages keep the numbers the model saw (what it streamed stays right where it was right); the
citations lead with the best evidence: listed by the passage's search rank (the strongest passage
that supports a sentence first, whichever sentence cites it), each narrowed to the lines that
support it, with that span quoted verbatim.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from localresearch.contradiction import contradiction
from localresearch.extractive import (
    _BOUNDARY,
    _FENCE,
    _HEADING,
    Sentence,
    _is_abbreviation,
    split_sentences,
    terms,
)
from localresearch.providers.base import Citation

# Share of a sentence's (rarity-weighted) content words a passage must hold to support it.
# Judged on written judgements over two corpora, SciFact abstracts and the project's docs
# (scripts/judge_support.py, docs/benchmarks.md): 0.5 has the best or near-best F1 on both.
SUPPORT_THRESHOLD = 0.5
# A marker the model chose is kept when its passage holds this much. It was 0.4 ("the model read
# the passage"); on both judged sets 0.4 kept wrong markers on plausible wrong claims that 0.5
# refuses, at the cost of one paraphrase of 14 on one set.
KEEP_THRESHOLD = 0.5
# Cosine similarity that counts as support when an embedder is configured.
EMBEDDING_THRESHOLD = 0.75
MIN_CLAIM_TERMS = 2  # shorter sentences ("From your notes:", "Yes.") claim nothing to cite
QUOTE_CHARS = 600

_NUMBERS = r"\d{1,3}(?:\s*[,;]\s*\d{1,3})*"  # inside a marker: "1", "1, 2", "1;3"
_MARKERS = re.compile(rf"[ \t]*\[({_NUMBERS})\]")
_LIST = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_MARKER_BOUNDARY = re.compile(rf"(?<![.!?])\s*\[{_NUMBERS}\](?=\s+[\"'(*_`]*[A-Z])")
_LEADING_MARKERS = re.compile(rf"(?:\s*\[{_NUMBERS}\])+")
# "**Section**: …" or "**Sources:** …" leads a paragraph: a label, not part of the sentence.
_LABEL = re.compile(r"\s*\*\*[^*\n]+?(?:\*\*:|:\*\*)\s*")
# A line that is only bold words, no full stop ("**Backing up SQLite**"): a heading.
_EMPHASIS_LINE = re.compile(r"\s*(\*\*|__)[^*_\n]*[^*_\n.!?]\1\s*:?\s*")

Embed = Callable[[list[str]], list[list[float]]]


@dataclass(frozen=True)
class Passage:
    """One numbered passage the answer could cite: where it is, and its text as in the file."""

    n: int
    file: str
    line_start: int
    line_end: int
    path: str = ""
    text: str = ""
    rank: int = 0  # 0 = the search's best hit
    page: int | None = None  # PDFs: the page; the lines count within it
    heading: str = ""  # the heading path above it (it frames the passage's topic)


@dataclass
class AlignedSentence:
    """One sentence of the answer, with the passages that support it."""

    text: str
    start: int  # offsets in the original answer text
    end: int
    claim: bool  # False for sentences too short to need a source
    cited: list[int] = field(default_factory=list)  # passage numbers (input numbering)
    supported: bool = True
    score: float = 0.0
    corrected: bool = False  # the markers were changed
    quotes: dict[int, Sentence] = field(default_factory=dict)
    quoted: bool = False  # quoted from a passage by the daemon (localresearch.evidence)
    # Why the passage holding its words does not support it: "negation" or "number".
    conflict: str = ""

    def to_dict(self, renumber: dict[int, int]) -> dict[str, Any]:
        return {
            "text": self.text,
            "citations": [renumber[n] for n in self.cited if n in renumber],
            "supported": self.supported,
            "claim": self.claim,
            "score": round(self.score, 3),
            "quoted": self.quoted,
        }


@dataclass
class Alignment:
    """The corrected answer, its sentences and the citations it now carries."""

    text: str
    sentences: list[AlignedSentence]
    citations: list[Citation]
    renumber: dict[int, int]
    corrections: int = 0
    evidence: Any = None  # the quotes added beside a model's answer (localresearch.evidence)

    def sentence_dicts(self) -> list[dict[str, Any]]:
        return [s.to_dict(self.renumber) for s in self.sentences]

    @property
    def unsupported(self) -> list[str]:
        return [s.text for s in self.sentences if s.claim and not s.supported]


def _clean(text: str) -> str:
    return " ".join(_MARKERS.sub("", text).split())


def answer_sentences(answer: str) -> list[tuple[int, int]]:
    """(start, end) spans of the prose sentences of a Markdown answer (code blocks, tables and
    headings are left out); each span includes the markers that follow the sentence."""
    spans: list[tuple[int, int]] = []
    offset = 0
    in_fence = False
    block: list[tuple[int, int]] = []  # line spans of the current paragraph

    def flush() -> None:
        if not block:
            return
        start, end = block[0][0], block[-1][1]
        text = answer[start:end]
        cuts = [0]
        for m in _BOUNDARY.finditer(text):
            if not _is_abbreviation(text, m.start()):
                # Markers after the full stop ("… holds. [1] Next …") belong to the sentence
                # before them.
                trailing = _LEADING_MARKERS.match(text, m.end())
                cuts.append(trailing.end() if trailing else m.end())
        # A marker ends a sentence that has no full stop ("… (default 10) [1] The first …",
        # a table row quoted as prose).
        cuts.extend(m.end() for m in _MARKER_BOUNDARY.finditer(text))
        cuts = sorted(set(cuts))
        cuts.append(len(text))
        for a, b in itertools.pairwise(cuts):
            piece = text[a:b]
            lead = len(piece) - len(piece.lstrip())
            if piece.strip():
                spans.append((start + a + lead, start + a + len(piece.rstrip())))
        block.clear()

    for line in answer.splitlines(keepends=True):
        start, end = offset, offset + len(line.rstrip("\r\n"))
        offset += len(line)
        body = answer[start:end]
        if _FENCE.match(body):
            flush()
            in_fence = not in_fence
            continue
        if in_fence or not body.strip() or body.lstrip().startswith("|"):
            flush()
            continue
        if _HEADING.match(body) or _EMPHASIS_LINE.fullmatch(body):
            flush()
            continue
        listed = _LIST.match(body)
        if listed:
            flush()
        lead = listed.end() if listed else 0
        label = _LABEL.match(body, lead)
        lead = label.end() if label else lead
        if lead >= len(body):
            continue  # a label alone ("**Section**:") on its line
        if _HEADING.match(body[lead:]) or _EMPHASIS_LINE.fullmatch(body[lead:]):
            flush()  # a heading echoed after a label ("**Sources:** # Backing up SQLite")
            continue
        block.append((start + lead, end))
    flush()
    # Markers a model puts after the full stop belong to the sentence before them.
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and not _clean(answer[start:end]).strip(" .,;:"):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _markers(text: str) -> list[int]:
    found: list[int] = []
    for m in _MARKERS.finditer(text):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part.strip())
            if n not in found:
                found.append(n)
    return found


class _Index:
    """The passages' sentences (and adjacent pairs) as weighted term bags."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = {p.n: p for p in passages}
        self.units: list[tuple[int, Sentence, Sentence, set[str]]] = []
        for p in passages:
            sentences = split_sentences(p.text, first_line=p.line_start) or [
                Sentence(p.text.strip(), 0, len(p.text), p.line_start, p.line_end)
            ]
            bags = [set(terms(s.text)) for s in sentences]
            for i, s in enumerate(sentences):
                self.units.append((p.n, s, s, bags[i]))
            for i, s in enumerate(sentences[:-1]):  # a model often joins two sentences in one
                self.units.append((p.n, s, sentences[i + 1], bags[i] | bags[i + 1]))
        n = max(1, len(self.units))
        df: Counter[str] = Counter()
        for unit in self.units:
            df.update(unit[3])
        self.idf = {t: math.log(1.0 + n / (1 + c)) + 0.1 for t, c in df.items()}
        self.unseen = math.log(1.0 + n) + 0.1

    def support(
        self, text: str, sentence_terms: set[str], floor: float = 0.0
    ) -> tuple[dict[int, tuple[float, Sentence, Sentence]], dict[int, str]]:
        """Per passage: the share of the sentence's weighted terms its best unit holds, leaving
        out a unit holding at least `floor` that the sentence contradicts (a negation or a
        number of its own, localresearch.contradiction); and per passage, why the unit that
        would have supported it more does not."""
        weights = {t: self.idf.get(t, self.unseen) for t in sentence_terms}
        total = sum(weights.values()) or 1.0
        best: dict[int, tuple[float, Sentence, Sentence]] = {}
        vetoed: dict[int, tuple[float, str]] = {}
        for n, first, last, bag in self.units:
            score = sum(w for t, w in weights.items() if t in bag) / total
            if score <= best.get(n, (-1.0,))[0]:
                continue
            if score >= floor > 0:
                why = self.contradicts(text, n, first, last)
                if why:
                    if score > vetoed.get(n, (-1.0, ""))[0]:
                        vetoed[n] = (score, why)
                    continue
            best[n] = (score, first, last)
        # Strongest contradicted passage first.
        conflicts = {
            n: why
            for n, (score, why) in sorted(vetoed.items(), key=lambda kv: -kv[1][0])
            if score > best.get(n, (-1.0,))[0]
        }
        return best, conflicts

    def weight(self, term: str) -> float:
        return self.idf.get(term, self.unseen)

    def contradicts(self, text: str, n: int, first: Sentence, last: Sentence) -> str:
        """Why `text` contradicts passage `n`'s unit first..last, or ""."""
        source = first.text if first is last else f"{first.text} {last.text}"
        return contradiction(text, source, self.passages[n].text, self.weight)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def align(
    answer: str,
    passages: Sequence[Passage],
    *,
    embed: Embed | None = None,
    threshold: float = SUPPORT_THRESHOLD,
    flag: str = "",
) -> Alignment:
    """Verify and correct the citations of `answer` against `passages` (numbered as the model
    saw them); see the module docstring. With `flag`, an unsupported sentence carries it in
    the text (reports, which have no per-sentence JSON)."""
    index = _Index(passages)
    numbers = set(index.passages)
    spans = answer_sentences(answer)
    sentences: list[AlignedSentence] = []
    vectors: dict[int, list[float]] = {}
    texts = [_clean(answer[a:b]) for a, b in spans]
    if embed is not None and passages:
        try:
            got = embed([p.text for p in passages] + texts)
            pv = got[: len(passages)]
            vectors = {p.n: v for p, v in zip(passages, pv, strict=True)}
            sentence_vectors = got[len(passages) :]
        except Exception:  # an embedder that fails leaves lexical alignment only
            vectors, sentence_vectors = {}, []
    else:
        sentence_vectors = []
    for i, ((start, end), text) in enumerate(zip(spans, texts, strict=True)):
        own = set(terms(text))
        item = AlignedSentence(text, start, end, claim=len(own) >= MIN_CLAIM_TERMS)
        sentences.append(item)
        given = [n for n in _markers(answer[start:end]) if n in numbers]
        if not item.claim:
            item.cited = given
            continue
        support, conflicts = index.support(text, own, min(KEEP_THRESHOLD, threshold))
        if vectors and i < len(sentence_vectors):
            for n, vector in vectors.items():
                cos = _cosine(sentence_vectors[i], vector)
                if cos < EMBEDDING_THRESHOLD or n not in support or n in conflicts:
                    continue
                score, first, last = support[n]
                # Meaning close enough counts, unless the sentence contradicts the passage.
                if not index.contradicts(text, n, first, last):
                    support[n] = (max(score, threshold * cos / EMBEDDING_THRESHOLD), first, last)
        kept = [n for n in given if support.get(n, (0.0,))[0] >= min(KEEP_THRESHOLD, threshold)]
        ranked = sorted(
            support.items(), key=lambda kv: (-kv[1][0], index.passages[kv[0]].rank, kv[0])
        )
        best_n, (best_score, _f, _l) = ranked[0] if ranked else (0, (0.0, None, None))
        if kept:
            item.cited = kept
            item.score = max(support[n][0] for n in kept)
        elif best_score >= threshold:
            item.cited = [best_n]
            item.score = best_score
        else:
            item.cited = []
            item.score = best_score
        item.supported = bool(item.cited)
        if not item.supported:
            item.conflict = next(iter(conflicts.values()), "")
        item.corrected = item.cited != given
        for n in item.cited:
            item.quotes[n] = support[n][1]
            if support[n][2] is not support[n][1]:
                item.quotes[-n] = support[n][2]  # the second sentence of a joined pair
    return _rewrite(answer, sentences, index, flag)


def _rewrite(
    answer: str, sentences: list[AlignedSentence], index: _Index, flag: str = ""
) -> Alignment:
    """The answer with corrected markers and its citations, strongest passage first, each
    narrowed to the lines that support it and quoting them."""
    renumber: dict[int, int] = {}  # kept as the model saw them: what it streamed stays right
    for s in sentences:
        for n in s.cited:
            renumber.setdefault(n, n)
    out: list[str] = []
    cursor = 0
    corrections = 0
    for s in sentences:
        piece = answer[s.start : s.end]
        out.append(answer[cursor : s.start])
        cursor = s.end
        given = _markers(piece)
        if not s.claim and not given:
            out.append(piece)
            continue
        flagged = flag if s.claim and not s.supported else ""
        if [n for n in given if n in index.passages] == s.cited and not flagged:
            out.append(piece)  # the model's own markers hold: its text stays as it streamed
            continue
        corrections += int(s.corrected)
        out.append(_remark(piece, [renumber[n] for n in s.cited], flagged))
    out.append(answer[cursor:])
    text = "".join(out)
    spans: dict[int, list[Sentence]] = {}
    for s in sentences:
        for key, unit in s.quotes.items():
            spans.setdefault(abs(key), []).append(unit)
    citations: list[Citation] = []
    # The search's best passage among those cited leads: what a reader checks first is the
    # strongest evidence, not whatever the first sentence happened to cite.
    for n, new in sorted(renumber.items(), key=lambda kv: (index.passages[kv[0]].rank, kv[0])):
        p = index.passages[n]
        quotes = sorted({(q.start, q.end): q for q in spans.get(n, [])}.values(), key=_at)
        if quotes:
            line_start = min(q.line_start for q in quotes)
            line_end = max(q.line_end for q in quotes)
            quoted = " … ".join(" ".join(p.text[q.start : q.end].split()) for q in quotes)
        else:
            line_start, line_end, quoted = p.line_start, p.line_end, p.text
        citations.append(
            Citation(
                new,
                p.file,
                line_start,
                line_end,
                p.path,
                quoted[:QUOTE_CHARS].strip(),
                p.page,
            )
        )
    return Alignment(text, sentences, citations, renumber, corrections)


def _remark(piece: str, numbers: list[int], flag: str = "") -> str:
    """A sentence with its markers replaced (or a flag put) before its closing punctuation."""
    bare = _MARKERS.sub("", piece).rstrip()
    marks = "".join(f"[{n}]" for n in numbers) or flag
    if not marks:
        return bare
    stop = len(bare.rstrip(".!?;:"))
    return f"{bare[:stop].rstrip()} {marks}{bare[stop:]}"


def _at(sentence: Sentence) -> int:
    return sentence.start
