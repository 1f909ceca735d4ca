"""Deterministic extractive answering: split passages into sentences (keeping their lines), score
them against a question, pick the best without repeats, and keep the `[n]` → file:lines book.

Shared by the builtin provider (answers from memory with no model) and research jobs (evidence
picking); everything here is pure and synchronous, so callers run it in a thread when it is big.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from localresearch.memory.grams import has_unspaced, pairs, query_runs
from localresearch.providers.base import Citation

_STOPWORDS_TEXT = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves tell say says said know explain
    describe please note notes mention mentions mentioned thing things anything something also use
    used using via per like get got happen happens happened work works mean means way ways
    lot lots kind sort keep keeps make makes take takes give gives let lets need needs want
    handle handles handled deal deals
    what's that's there's here's it's let's who's how's where's i'm i've i'd i'll you're you've
    we're we've they're they've don't doesn't didn't isn't aren't wasn't weren't can't couldn't
    won't wouldn't shouldn't"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}")
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by space and a likely start.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]*_]*\s+(?=[\"'(\[*_`]*[A-Z0-9])")
_ABBREVIATIONS_TEXT = "e.g i.e etc vs cf mr mrs ms dr prof st fig no approx incl esp resp al"
_ABBREVIATIONS = frozenset(_ABBREVIATIONS_TEXT.split())
_CITE = re.compile(r"\[(\d{1,3})\]")
# A query term in a passage's heading path counts for its sentences at this weight.
CONTEXT_WEIGHT = 0.5


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light, predictable suffix stripper so 'indexes', 'indexing', 'indexed' meet 'index'
    (cached: the same words recur across passages and questions)."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith("es") and w[:-2].endswith(("x", "z", "ch", "sh", "ss")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(w) > 5 and w.endswith("ing"):
        return _undouble(w[:-3])
    if len(w) > 4 and w.endswith("ed"):
        return _undouble(w[:-2])
    if len(w) > 4 and w.endswith("e") and not w.endswith("ee"):
        return w[:-1]  # 'write' meets 'writing', 'configure' meets 'configured'
    return w


def _undouble(stem_: str) -> str:
    """'logg' → 'log', 'stopp' → 'stop' (but 'pass', 'call', 'buzz' keep theirs)."""
    if len(stem_) > 2 and stem_[-1] == stem_[-2] and stem_[-1] not in "lsz":
        return stem_[:-1]
    return stem_


def words(text: str) -> list[str]:
    return [m.group(0) for m in _WORD.finditer(text)]


def terms(text: str) -> list[str]:
    """Stemmed content words of a text, in order (stopwords dropped); a run of an unspaced
    script (Chinese, Thai, ...) gives its character pairs, as the memory index does."""
    out: list[str] = []
    for w in words(text):
        if has_unspaced(w):
            out.extend(pair for run in query_runs(w) for pair in pairs(run))
        elif w.lower().replace("’", "'") not in STOPWORDS and len(w) > 1:
            out.append(stem(w))
    return out


def query_terms(query: str) -> list[str]:
    """The distinct stemmed terms a question asks about, in order."""
    seen: dict[str, None] = {}
    for term in terms(query):
        seen.setdefault(term, None)
    return list(seen)


def count_tokens(text: str) -> int:
    """A model-free token estimate (words and punctuation) for usage records."""
    return len(_TOKEN.findall(text))


@dataclass(frozen=True)
class Sentence:
    """One sentence of a passage, with where it sits: char offsets and 1-based lines."""

    text: str
    start: int
    end: int
    line_start: int
    line_end: int
    source: int = 0  # index of the passage it came from
    position: int = 0  # order within that passage
    heading: bool = False


def _blocks(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, is_heading) spans of prose blocks; code fences and table rules are skipped."""
    blocks: list[tuple[int, int, bool]] = []
    offset = 0
    in_fence = _starts_inside_fence(text)
    in_comment = False
    block_start: int | None = None

    def close(end: int) -> None:
        nonlocal block_start
        if block_start is not None and end > block_start:
            blocks.append((block_start, end, False))
        block_start = None

    for line in text.splitlines(keepends=True):
        start, end = offset, offset + len(line)
        offset = end
        body = line.rstrip("\r\n")
        if _FENCE.match(body):
            close(start)
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if in_comment or body.lstrip().startswith("<!--"):
            close(start)
            in_comment = "-->" not in body
            continue
        if not body.strip() or _TABLE_RULE.match(body):
            close(start)
            continue
        if _HEADING.match(body):
            close(start)
            blocks.append((start, start + len(body), True))
            continue
        if _LIST_ITEM.match(body) or body.lstrip().startswith(("|", ">")):
            close(start)
        if block_start is None:
            block_start = start
    close(offset)
    return blocks


def _starts_inside_fence(text: str) -> bool:
    """A passage cut from a longer file may begin inside a code block: with an odd number of
    fences, a bare first fence (no language tag) is taken to be a closing one."""
    fences = [line.strip() for line in text.splitlines() if _FENCE.match(line)]
    return len(fences) % 2 == 1 and fences[0] in ("```", "~~~")


def _prose_like(text: str) -> bool:
    """False for command lines and code that slipped outside a fence."""
    tokens = text.split()
    if not tokens:
        return False
    if has_unspaced(text):  # one "word" a sentence: isalpha() says nothing here
        return True
    wordy = sum(1 for t in tokens if t.strip(".,;:!?()\"'*_").isalpha())
    return wordy / len(tokens) >= 0.5


def _clean(fragment: str) -> str:
    """Sentence text without Markdown scaffolding (markers, heading hashes, extra spaces)."""
    lines = []
    for raw in fragment.splitlines():
        line = _HEADING.sub("", raw)
        line = _LIST_ITEM.sub("", line)
        line = line.strip().lstrip(">").strip()
        if line.startswith("|"):
            line = " ".join(cell.strip() for cell in line.strip("|").split("|") if cell.strip())
        lines.append(line)
    return " ".join(part for part in lines if part).strip()


def _is_abbreviation(text: str, stop: int) -> bool:
    """True when the '.' ending at `stop` closes an abbreviation or an initial, not a sentence."""
    head = text[:stop].rstrip(".!?\"')]*_")
    last = head.rsplit(None, 1)[-1] if head.split() else ""
    last = last.lstrip("(\"'[*_").lower()
    return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha() and text[stop - 1] == ".")


def split_sentences(text: str, *, first_line: int = 1, source: int = 0) -> list[Sentence]:
    """Split Markdown or plain text into sentences; `first_line` is the line `text` starts at."""
    sentences: list[Sentence] = []
    for block_start, block_end, is_heading in _blocks(text):
        block = text[block_start:block_end]
        cuts = [0]
        if not is_heading:
            for m in _BOUNDARY.finditer(block):
                if not _is_abbreviation(block, m.start()):
                    cuts.append(m.end())
        cuts.append(len(block))
        for a, b in itertools.pairwise(cuts):
            fragment = block[a:b]
            cleaned = _clean(fragment)
            if not cleaned or not _WORD.search(cleaned) or not _prose_like(cleaned):
                continue
            lead = len(fragment) - len(fragment.lstrip())
            start = block_start + a + lead
            end = block_start + a + len(fragment.rstrip())
            line_start = first_line + text.count("\n", 0, start)
            line_end = first_line + text.count("\n", 0, max(start, end - 1))
            sentences.append(
                Sentence(
                    text=cleaned,
                    start=start,
                    end=end,
                    line_start=line_start,
                    line_end=line_end,
                    source=source,
                    position=len(sentences),
                    heading=is_heading,
                )
            )
    return _renumber(sentences)


def _renumber(sentences: list[Sentence]) -> list[Sentence]:
    return [
        Sentence(s.text, s.start, s.end, s.line_start, s.line_end, s.source, i, s.heading)
        for i, s in enumerate(sentences)
    ]


@dataclass(frozen=True)
class ScoredSentence:
    sentence: Sentence
    score: float
    matched: frozenset[str] = field(default_factory=frozenset)


def score_sentences(
    sentences: Sequence[Sentence],
    query: str | Sequence[str],
    *,
    source_weights: Sequence[float] | None = None,
    contexts: Sequence[str] | None = None,
) -> list[ScoredSentence]:
    """Score each sentence by the rarer query terms it contains, how many, and its passage's rank.

    `contexts` (per passage: its heading path) count at CONTEXT_WEIGHT for every sentence of
    the passage: "What is the marathon taper?" finds the sentences under `## Taper`.
    Returns them best first (ties broken by source then position, so the result is deterministic).
    Sentences matching no query term score 0.
    """
    qterms = query_terms(query) if isinstance(query, str) else list(query)
    if not qterms:
        return [ScoredSentence(s, 0.0) for s in sentences]
    bags = [Counter(terms(s.text)) for s in sentences]
    n = max(1, len(sentences))
    df = Counter(t for bag in bags for t in set(bag) if t in qterms)
    idf = {t: math.log(1.0 + n / (1 + df[t])) + 0.1 for t in qterms}
    total_idf = sum(idf.values())
    context_bags = [frozenset(terms(c)) for c in contexts] if contexts is not None else []
    scored: list[ScoredSentence] = []
    for sentence, bag in zip(sentences, bags, strict=True):
        matched = frozenset(t for t in qterms if t in bag)
        context = context_bags[sentence.source] if sentence.source < len(context_bags) else ()
        framed = frozenset(t for t in qterms if t in context and t not in matched)
        if not matched and (not framed or sentence.heading):
            scored.append(ScoredSentence(sentence, 0.0))
            continue
        weight = sum(idf[t] * (1.0 + 0.2 * min(bag[t] - 1, 2)) for t in matched)
        weight += CONTEXT_WEIGHT * sum(idf[t] for t in framed)
        coverage = sum(idf[t] for t in matched | framed) / total_idf
        length = len(bag)
        brevity = 0.6 if length < 3 else (0.8 if length > 60 else 1.0)
        score = weight * (0.5 + coverage) * brevity
        if sentence.heading:
            score *= 0.3
        if source_weights is not None and sentence.source < len(source_weights):
            score *= 0.75 + 0.25 * source_weights[sentence.source]
        scored.append(ScoredSentence(sentence, round(score, 6), matched))
    scored.sort(key=lambda s: (-s.score, s.sentence.source, s.sentence.position))
    return scored


# A question's words a passage must hold, by rarity weight, when it holds only one of them.
MIN_TOPIC_SHARE = 0.5


def topic_weights(query: str | Sequence[str], sentences: Sequence[Sentence]) -> dict[str, float]:
    """The question's distinct terms, in order, each weighed by its rarity among `sentences` (a
    term no sentence holds being the rarest): what holds_topic judges a text by. Computed once
    for many texts (holds_weighted)."""
    qterms = query_terms(query) if isinstance(query, str) else list(dict.fromkeys(query))
    if not qterms:
        return {}
    bags = [set(terms(s.text)) for s in sentences]
    n = max(1, len(bags))
    return {t: math.log(1.0 + n / (1 + sum(t in bag for bag in bags))) for t in qterms}


def holds_weighted(weights: dict[str, float], bag: Collection[str]) -> bool:
    """Whether a text's terms (`bag`) hold the topic of `weights` (topic_weights): two of its
    terms or more, or one carrying at least MIN_TOPIC_SHARE of their weight."""
    if not weights:
        return False
    total = sum(weights.values()) or 1.0
    held = [t for t in weights if t in bag]
    return len(held) >= 2 or sum(weights[t] for t in held) / total >= MIN_TOPIC_SHARE


def holds_topic(
    query: str | Sequence[str], sentences: Sequence[Sentence], texts: Sequence[str]
) -> bool:
    """Whether some text (a passage with its heading) holds the question's distinctive words:
    two of its terms or more, or one carrying at least MIN_TOPIC_SHARE of its terms' weight.
    Terms are weighed by rarity among `sentences`, a term no sentence holds being the rarest,
    so in "How do I run the daemon under systemd?" over notes that never name a daemon or
    systemd, passages that share only *run* hold nothing the question is about. A question of
    one term is held by any text holding it. (On 100 SciFact claims, the project's docs
    questions and 24 questions on a small notes folder, no answerable question fails this.)"""
    weights = topic_weights(query, sentences)
    return any(holds_weighted(weights, set(terms(text))) for text in texts)


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of the content terms of two texts (0 to 1)."""
    sa, sb = set(terms(a)), set(terms(b))
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def select_sentences(
    scored: Iterable[ScoredSentence],
    *,
    limit: int = 6,
    redundancy: float = 0.6,
    min_score: float = 0.0,
    include_headings: bool = False,
    relative_floor: float = 0.0,
) -> list[ScoredSentence]:
    """Take the best sentences, skipping ones too similar to one already taken, and (with
    `relative_floor`) ones scoring below that fraction of the best: no weak tail of matches."""
    chosen: list[ScoredSentence] = []
    seen_text: set[str] = set()
    ranked = list(scored)
    best = max((s.score for s in ranked if include_headings or not s.sentence.heading), default=0)
    floor = max(min_score, best * relative_floor)
    for item in ranked:
        if len(chosen) >= limit:
            break
        if item.score <= floor or (item.sentence.heading and not include_headings):
            continue
        key = item.sentence.text.lower()
        if key in seen_text:
            continue
        if any(similarity(item.sentence.text, c.sentence.text) > redundancy for c in chosen):
            continue
        seen_text.add(key)
        chosen.append(item)
    return chosen


def reading_order(chosen: Sequence[ScoredSentence]) -> list[list[ScoredSentence]]:
    """Group chosen sentences by passage (best passage first), each group in document order."""
    groups: dict[int, list[ScoredSentence]] = {}
    for item in chosen:  # chosen is best-first, so dict order is best-passage-first
        groups.setdefault(item.sentence.source, []).append(item)
    return [sorted(g, key=lambda s: s.sentence.position) for g in groups.values()]


class CitationBook:
    """Numbers sources as they are cited; the same file span always gets the same `[n]`."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int, int, int | None], Citation] = {}

    def cite(
        self,
        file: str,
        line_start: int,
        line_end: int,
        *,
        path: str = "",
        text: str = "",
        page: int | None = None,
    ) -> int:
        key = (file, line_start, line_end, page)
        existing = self._by_key.get(key)
        if existing is not None:
            return existing.n
        n = len(self._by_key) + 1
        self._by_key[key] = Citation(n, file, line_start, line_end, path, text, page)
        return n

    @property
    def citations(self) -> list[Citation]:
        return sorted(self._by_key.values(), key=lambda c: c.n)

    def __len__(self) -> int:
        return len(self._by_key)


def cited_numbers(text: str) -> list[int]:
    """The distinct `[n]` markers in a text, in order of first appearance."""
    seen: dict[int, None] = {}
    for m in _CITE.finditer(text):
        seen.setdefault(int(m.group(1)), None)
    return list(seen)


def format_location(citation: Citation) -> str:
    """`file:line` or `file:start-end`, the form editors and terminals open; a PDF's page
    before its lines (`report.pdf p. 3:2`)."""
    name = citation.file if citation.page is None else f"{citation.file} p. {citation.page}"
    if citation.line_end and citation.line_end != citation.line_start:
        return f"{name}:{citation.line_start}-{citation.line_end}"
    return f"{name}:{citation.line_start}"


@dataclass(frozen=True)
class CodeBlock:
    """A complete fenced code block (or Markdown table) of a passage, verbatim, with the line
    that introduces it."""

    text: str  # the fences included, exactly as written
    line_start: int  # of the lead-in when there is one, else of the opening fence
    line_end: int  # of the closing fence
    language: str = ""
    lead_in: str = ""  # "Run it:" just above the fence (verbatim), or ""
    section: str = ""  # the nearest heading above it within the passage (without #s)
    position: int = 0
    kind: str = "code"  # or "table"


LEAD_IN_LINES = 6  # how far up a code block's introducing sentence may start
_FENCE_OPEN = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([\w+.#-]*)")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def code_blocks(text: str, *, first_line: int = 1) -> list[CodeBlock]:
    """The fenced blocks that open and close inside `text` (a passage cut mid-block yields none
    for that block), each with its lead-in line (the prose line ending in ':' just above it)."""
    return [b for b in verbatim_blocks(text, first_line=first_line) if b.kind == "code"]


def verbatim_blocks(text: str, *, first_line: int = 1) -> list[CodeBlock]:
    """Fenced code blocks and Markdown tables (header, rule and rows) of a passage, in order:
    the parts an answer must quote whole or not at all."""
    lines = text.splitlines()
    blocks: list[CodeBlock] = []
    section = ""
    i = 0
    if _starts_inside_fence(text):  # skip the tail of a block the passage was cut inside
        i = next(n for n, line in enumerate(lines) if _FENCE.match(line)) + 1

    def add(start: int, end: int, kind: str, language: str = "") -> None:
        first, lead = start, ""
        k = start - 1
        if k >= 0 and not lines[k].strip():
            k -= 1
        if k >= 0 and lines[k].rstrip().endswith(":"):
            # The lead-in is the last sentence of the paragraph above, which may span lines.
            top = k
            while (
                top > 0
                and k - top < LEAD_IN_LINES
                and lines[top - 1].strip()
                and not _FENCE.match(lines[top - 1])
                and not _HEADING.match(lines[top - 1])
                and not lines[top - 1].lstrip().startswith("|")
            ):
                top -= 1
            paragraph = "\n".join(lines[top : k + 1])
            found = split_sentences(paragraph, first_line=top)
            if found and not found[-1].heading and found[-1].line_end == k:
                last = found[-1]
                lead, first = paragraph[last.start : last.end].strip(), last.line_start
            elif not _HEADING.match(lines[k]) and not _FENCE.match(lines[k]):
                lead, first = lines[k].strip(), k  # a path or a command line: not prose
        blocks.append(
            CodeBlock(
                text="\n".join(lines[start : end + 1]),
                line_start=first_line + first,
                line_end=first_line + end,
                language=language,
                lead_in=lead,
                section=section,
                position=len(blocks),
                kind=kind,
            )
        )

    while i < len(lines):
        line = lines[i]
        if _HEADING.match(line):
            section = _HEADING.sub("", line).strip().strip("#").strip()
            i += 1
            continue
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
            end = i + 1
            while end + 1 < len(lines) and lines[end + 1].lstrip().startswith("|"):
                end += 1
            add(i, end, "table")
            i = end + 1
            continue
        opened = _FENCE_OPEN.match(line)
        if not opened:
            i += 1
            continue
        fence = opened.group(1)
        close = next(
            (
                j
                for j in range(i + 1, len(lines))
                if lines[j].strip().startswith(fence[0] * len(fence))
                and not lines[j].strip().strip(fence[0])
            ),
            None,
        )
        if close is None:
            break
        add(i, close, "code", opened.group(2))
        i = close + 1
    return blocks


def is_boilerplate(sentence: Sentence) -> bool:
    """Headings alone, lead-ins cut off from their code ('Run it:'), and link-only lines
    (tables of contents, 'See [x](x.md).') carry no answer of their own."""
    text = sentence.text
    if sentence.heading or text.rstrip().endswith(":"):
        return True
    if _LINK.search(text):
        rest = _LINK.sub("", text)
        if len(words(rest)) < 3:
            return True
    return False
