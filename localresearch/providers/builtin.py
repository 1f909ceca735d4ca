"""The offline default: answers "what do my notes say about X" by extracting cited sentences
from memory hits, with no model, deterministically."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from localresearch.extractive import (
    CitationBook,
    CodeBlock,
    ScoredSentence,
    Sentence,
    count_tokens,
    holds_topic,
    is_boilerplate,
    query_terms,
    score_sentences,
    select_sentences,
    similarity,
    split_sentences,
    terms,
    verbatim_blocks,
)
from localresearch.memory.kinds import is_daily_log
from localresearch.memory.types import MemorySearcher, SearchHit
from localresearch.providers.base import (
    ChatRequest,
    Citation,
    Provider,
    StreamItem,
    TextChunk,
    Usage,
)

MAX_SENTENCES = 7
MAX_ANSWER_CHARS = 1200  # sentence text; code blocks have their own budget
MAX_CODE_BLOCKS = 2
MAX_CODE_LINES = 40
MIN_CODE_RELEVANCE = 0.3  # weighted share of the question's terms a block must show
MAX_FILE_BYTES = 4_000_000  # larger files keep their indexed chunk text
SEARCH_LIMIT = 8
MAX_WIDER_SEARCHES = 3  # searches without one word each, when a search finds little
# Past answers are logged to memory/YYYY-MM-DD.md; when a note says the same, cite the note.
LOG_WEIGHT = 0.5
RELATIVE_FLOOR = 0.25  # drop sentences scoring under a quarter of the best one
REDUNDANCY = 0.6  # select_sentences' default: more overlap than this says the same
_HOWTO = re.compile(
    r"\b(?:how|install\w*|run\w*|start\w*|configur\w*|set\s?up|setup|enabl\w*|disabl\w*|"
    r"use|using|examples?|commands?|syntax|format|looks? like|write|add|creat\w*|deploy\w*|"
    r"build\w*|show)\b",
    re.IGNORECASE,
)
# "Which events…", "what are the fields…": a table often is the answer.
_LISTING = re.compile(
    r"\b(?:which|list|what\s+(?:are|events|fields|options|settings|codes|values|types))\b",
    re.IGNORECASE,
)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}")
_TEXT_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd", ".txt", ".text", ".rst", ".rest"})


async def retrieve(memory: MemorySearcher, question: str, limit: int) -> list[SearchHit]:
    """Passages for a question: the memory search as asked and one with every term as a prefix
    (so "keys" also finds "key" and "logs" finds "logged"), merged without repeats; when they
    find little, a few more, each without one of the words all those passages share."""
    stems = [t for t in query_terms(question) if len(t) >= 3]
    if not stems:
        return await memory.search(question, limit)
    # Both at once: each is a trip to a reader thread, and this is on the way to the first token.
    hits, wider = await asyncio.gather(
        memory.search(question, limit), memory.search(" ".join(f"{t}*" for t in stems), limit)
    )
    seen = {(h.file, h.line_start, h.line_end) for h in hits}
    extra = [h for h in wider if (h.file, h.line_start, h.line_end) not in seen]
    merged = hits + extra[: max(0, limit - len(hits) // 2)]
    if 0 < len(merged) < limit // 2:
        # The index narrows a search to passages holding its rarest word ("plugin"): when that
        # leaves little, look once more without the words every passage found so far shares.
        found = [set(terms(f"{h.heading} {h.content}")) for h in merged]
        shared = [t for t in stems if all(t in bag for bag in found)]
        for dropped in shared[:MAX_WIDER_SEARCHES] if len(stems) > 1 else []:
            seen |= {(h.file, h.line_start, h.line_end) for h in merged}
            rest = " ".join(f"{t}*" for t in stems if t != dropped)
            more = await memory.search(rest, limit)
            room = min(2, limit - len(merged))
            merged += [h for h in more if (h.file, h.line_start, h.line_end) not in seen][:room]
    return merged


@dataclass(frozen=True)
class ExtractiveAnswer:
    text: str
    citations: list[Citation]


def _question(request: ChatRequest) -> str:
    return next((m.content for m in reversed(request.messages) if m.role == "user"), "").strip()


# A greeting or thanks at the head of a message ("Hi there!", "Thanks, and what about X?"):
# courtesy, not a topic to look up.
_GREETING = re.compile(
    r"^\s*(?:(?:hi|hello|hey|hiya|howdy|greetings|good\s+(?:morning|afternoon|evening|day))"
    r"(?:\s+there)?|thanks?(?:\s+you)?(?:\s+(?:so|very)\s+much)?|cheers)"
    r"(?:\s*[!,.;:~-]+\s*|\s*$)",  # set off by punctuation: "hello world" is a topic
    re.IGNORECASE,
)
GREETING_REPLY = (
    "Hello! Ask me about your notes (for example “what do my notes say about sqlite?”) and I "
    "will answer from them, citing each passage."
)


def without_greeting(question: str) -> tuple[str, bool]:
    """The question with a leading greeting taken off, and whether there was one."""
    match = _GREETING.match(question)
    if match is None:
        return question, False
    return question[match.end() :], True


def nothing_found(question: str, reason: str = "") -> str:
    """The plain statement the builtin engine gives when the notes hold nothing relevant."""
    topic = question.strip().rstrip("?.! ") or "that"
    text = f"I found nothing in your notes about “{topic}”."
    if reason:
        text += f" {reason}"
    return text


def is_howto(question: str) -> bool:
    """Questions whose best answer is usually a command, a config snippet or an example."""
    return bool(_HOWTO.search(question))


@dataclass(frozen=True)
class Passage:
    """A hit's text as it stands in the file (exact lines, blank lines and all) when the file
    still holds it, else the indexed chunk as stored."""

    hit: SearchHit
    text: str


def _norm(text: str) -> str:
    return " ".join(text.split())


def passages(hits: Sequence[SearchHit]) -> list[Passage]:
    """Re-anchor each hit in its file so quotes, code blocks and line numbers are exact (the
    index may store a chunk with blank lines dropped); extracted formats (PDF, HTML) and files
    that changed since indexing keep the stored chunk."""
    files: dict[str, list[str] | None] = {}
    out: list[Passage] = []
    for hit in hits:
        if hit.path not in files:
            files[hit.path] = read_lines(hit.path)
        lines = files[hit.path]
        text = hit.content
        if lines is not None and 0 < hit.line_start <= hit.line_end <= len(lines):
            exact = "\n".join(lines[hit.line_start - 1 : hit.line_end])
            wanted = _norm(hit.content)
            if wanted and wanted in _norm(exact):
                text = exact
        out.append(Passage(hit, text))
    return out


def read_lines(path: str) -> list[str] | None:
    try:
        file = Path(path)
        if not path or file.suffix.lower() not in _TEXT_SUFFIXES:
            return None
        if file.stat().st_size > MAX_FILE_BYTES:
            return None
        return file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _pick_code(
    question: str, found: Sequence[Passage], weights: Sequence[float], *, tables: bool = False
) -> list[tuple[int, CodeBlock]]:
    """The relevant fenced blocks (and with `tables`, Markdown tables) of the best passage that
    has any: a block counts when its code, its lead-in and its section heading together cover
    at least half the question's terms (the passage's heading path counts when the block has
    no heading of its own)."""
    qterms = set(query_terms(question))
    if not qterms:
        return []
    # Terms rare among the passages' lines (a tool's name, not the project's) decide relevance.
    bags = [set(terms(line)) for p in found for line in p.text.splitlines() if line.strip()]
    idf = {t: math.log(1.0 + len(bags) / (1 + sum(t in bag for bag in bags))) for t in qterms}
    total = sum(idf.values()) or 1.0
    present = [idf[t] for t in qterms if any(t in bag for bag in bags)]
    rarest = {t for t in qterms if present and abs(idf[t] - max(present)) < 1e-9}
    best: tuple[float, int, list[tuple[float, CodeBlock]]] | None = None
    for index, passage in enumerate(found):
        hit = passage.hit
        relevant: list[tuple[float, CodeBlock]] = []
        for block in verbatim_blocks(passage.text, first_line=hit.line_start):
            if block.kind != "code" and not tables:
                continue
            if block.text.count("\n") + 1 > MAX_CODE_LINES:
                continue
            heading = block.section or hit.heading.rsplit(">", 1)[-1]
            titled = qterms & set(terms(heading))
            led = qterms & set(terms(block.lead_in))
            covered = titled | led | (qterms & set(terms(block.text)))
            if len(covered) < max(1, len(qterms) / 2):
                continue
            if not covered & rarest and len(titled) < len(qterms) / 2:
                continue  # neither the question's most telling word nor its section's subject
            # A term in the block's section title says most, in its lead-in less, and a word
            # inside the code (`[Install]` in a unit file) least.
            weight = sum(
                idf[t] * (1.0 if t in titled else 0.75 if t in led else 0.25) for t in covered
            )
            if weight / total >= MIN_CODE_RELEVANCE:
                relevant.append((weight / total, block))
        if not relevant:
            continue
        rank = max(c for c, _ in relevant) * (0.9 + 0.1 * weights[index])
        if best is None or rank > best[0]:
            best = (rank, index, relevant)
    if best is None:
        return []
    _, index, relevant = best
    relevant.sort(key=lambda cb: (-cb[0], cb[1].position))
    chosen: list[CodeBlock] = []
    lines = 0
    for _, block in relevant:
        size = block.text.count("\n") + 1
        if len(chosen) >= MAX_CODE_BLOCKS or lines + size > MAX_CODE_LINES:
            break
        chosen.append(block)
        lines += size
    return [(index, block) for block in chosen]


def _table_header(sentence: Sentence, found: Sequence[Passage], lines: list[list[str]]) -> bool:
    """A table's header row ('| what | default |') names columns; it answers nothing."""
    own = lines[sentence.source]
    at = sentence.line_start - found[sentence.source].hit.line_start
    return (
        0 <= at < len(own) - 1
        and own[at].lstrip().startswith("|")
        and bool(_TABLE_RULE.match(own[at + 1]))
    )


def _within_budget(chosen: Sequence[ScoredSentence]) -> list[ScoredSentence]:
    """Best first, until the answer would grow past MAX_ANSWER_CHARS (the best one always)."""
    kept: list[ScoredSentence] = []
    size = 0
    for item in chosen:
        size += len(item.sentence.text)
        if kept and size > MAX_ANSWER_CHARS:
            break
        kept.append(item)
    return kept


def _with_top_hit(
    chosen: list[ScoredSentence], scored: Sequence[ScoredSentence]
) -> list[ScoredSentence]:
    """The search's first hit speaks in the answer when any sentence of it matches the question:
    its best sentence takes the place of the weakest chosen one."""
    if not chosen or any(c.sentence.source == 0 for c in chosen):
        return chosen
    best = next((s for s in scored if s.sentence.source == 0 and s.score > 0), None)
    if best is None or any(
        similarity(best.sentence.text, c.sentence.text) > REDUNDANCY for c in chosen
    ):
        return chosen  # it says what a chosen sentence says (a log repeating a note)
    kept = chosen if len(chosen) < MAX_SENTENCES else chosen[:-1]
    return [*kept, best]


def compose_answer(question: str, hits: Sequence[SearchHit]) -> ExtractiveAnswer:
    """Answer `question` from `hits`: the ranked, non-redundant sentences that answer it and,
    for how-to questions, the code blocks that show it, grouped by section, each cited."""
    question, greeted = without_greeting(question)
    if not query_terms(question):
        if greeted:
            return ExtractiveAnswer(GREETING_REPLY, [])
        return ExtractiveAnswer(
            "Ask about a topic (for example “what do my notes say about sqlite?”) and I will "
            "answer from your notes.",
            [],
        )
    found = passages(hits)
    sentences = []
    for index, passage in enumerate(found):
        first = passage.hit.line_start
        sentences.extend(split_sentences(passage.text, first_line=first, source=index))
    if not holds_topic(question, sentences, [f"{p.hit.heading}\n{p.text}" for p in found]):
        return ExtractiveAnswer(nothing_found(question), [])
    top = max((h.score for h in hits), default=0.0)
    weights = [
        ((h.score / top) if top > 0 else 1.0) * (LOG_WEIGHT if is_daily_log(h.file) else 1.0)
        for h in hits
    ]
    contexts = [p.hit.heading for p in found]
    scored = score_sentences(sentences, question, source_weights=weights, contexts=contexts)
    lines = [p.text.splitlines() for p in found]
    scored = [
        s
        for s in scored
        if not is_boilerplate(s.sentence) and not _table_header(s.sentence, found, lines)
    ]
    chosen = _within_budget(
        select_sentences(scored, limit=MAX_SENTENCES, relative_floor=RELATIVE_FLOOR)
    )
    if hits and not is_daily_log(hits[0].file):  # a past answer is no best evidence
        chosen = _with_top_hit(chosen, scored)
    listing = bool(_LISTING.search(question))
    wants_blocks = listing or is_howto(question)
    code = _pick_code(question, found, weights, tables=listing) if wants_blocks else []
    if not chosen and not code:
        return ExtractiveAnswer(nothing_found(question), [])
    # Group by section (file and heading path): the code's section first, then best-first.
    groups: dict[tuple[str, str], list[tuple[int, int, ScoredSentence | CodeBlock]]] = {}
    for index, block in code:
        hit = found[index].hit
        groups.setdefault((hit.file, hit.heading), []).append((index, block.line_start, block))
    # Lead with the best evidence: after the code, sections in the search's rank order (its
    # first hit is a better judge of the strongest passage than one sentence's word overlap).
    for item in sorted(chosen, key=lambda c: c.sentence.source):
        hit = found[item.sentence.source].hit
        key = (hit.file, hit.heading)
        groups.setdefault(key, []).append((item.sentence.source, item.sentence.line_start, item))
    book = CitationBook()
    sections = [_render(heading, items, found, book) for (_, heading), items in groups.items()]
    return ExtractiveAnswer("From your notes:\n\n" + "\n\n".join(sections), book.citations)


def _render(
    heading: str,
    items: list[tuple[int, int, ScoredSentence | CodeBlock]],
    found: Sequence[Passage],
    book: CitationBook,
) -> str:
    """One section: its heading, then its sentences (joined in paragraphs) and code blocks in
    document order."""
    segments: list[str] = []
    paragraph: list[str] = []
    seen_lines: set[int] = set()
    for index, _, item in sorted(items, key=lambda t: (t[1], t[0])):
        hit = found[index].hit
        if isinstance(item, CodeBlock):
            if paragraph:
                segments.append(" ".join(paragraph))
                paragraph = []
            n = book.cite(
                hit.file,
                item.line_start,
                item.line_end,
                path=hit.path,
                text=item.text,
                page=hit.page,
            )
            lead = f"{item.lead_in} [{n}]\n\n" if item.lead_in else ""
            tail = "" if item.lead_in else f"\n[{n}]"
            segments.append(f"{lead}{item.text}{tail}")
            seen_lines.update(range(item.line_start, item.line_end + 1))
            continue
        s = item.sentence
        if s.line_start in seen_lines:
            continue  # already shown: a block's lead-in or a row of a table shown whole
        n = book.cite(hit.file, s.line_start, s.line_end, path=hit.path, text=s.text, page=hit.page)
        paragraph.append(f"{s.text} [{n}]")
    if paragraph:
        segments.append(" ".join(paragraph))
    if not heading:
        return "\n\n".join(segments)
    lead = f"**{heading}**:"
    if segments and not segments[0].startswith(("```", "~~~")) and "\n" not in segments[0]:
        return "\n\n".join([f"{lead} {segments[0]}", *segments[1:]])
    return "\n\n".join([lead, *segments])


class BuiltinProvider(Provider):
    """No model, no network: retrieval plus sentence extraction, cited to file and lines."""

    id = "builtin"
    needs_key = False
    default_model = "extractive"
    models = ("extractive",)
    extractive = True
    description = "Offline answers extracted from your notes (no model, no key)."

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        question = _question(request)
        asked = without_greeting(question)[0]
        hits = list(request.context)
        reason = ""
        if not hits and not request.retrieved:
            if self.memory is not None and query_terms(asked):
                hits = await retrieve(self.memory, asked, SEARCH_LIMIT)
            elif self.memory is None:
                reason = "(Memory search is off for this question, so there was nothing to read.)"
        answer = await asyncio.to_thread(compose_answer, question, hits)
        text = answer.text
        if not answer.citations and reason:
            text = nothing_found(question, reason)
        if request.json_mode:
            text = json.dumps(
                {"answer": text, "citations": [c.to_dict() for c in answer.citations]},
                ensure_ascii=False,
            )
        for piece in _pieces(text):
            yield TextChunk(piece)
        for citation in answer.citations:
            yield citation
        prompt = sum(count_tokens(m.content) for m in request.messages)
        prompt += sum(count_tokens(h.content) for h in hits)
        yield Usage(prompt_tokens=prompt, completion_tokens=count_tokens(text))

    async def list_models(self) -> list[str]:
        return [self.default_model]


def _pieces(text: str, size: int = 48) -> list[str]:
    """Split the answer at spaces into small chunks so it streams like a model's."""
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            space = text.rfind(" ", start + 1, end)
            end = space + 1 if space > start else end
        pieces.append(text[start:end])
        start = end
    return pieces
