"""The offline default: answers "what do my notes say about X" by extracting cited sentences
from memory hits, with no model, deterministically."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from localresearch.extractive import (
    CitationBook,
    count_tokens,
    query_terms,
    reading_order,
    score_sentences,
    select_sentences,
    split_sentences,
)
from localresearch.memory.types import MemorySearcher, SearchHit
from localresearch.providers.base import (
    ChatRequest,
    Citation,
    Provider,
    StreamItem,
    TextChunk,
    Usage,
)

MAX_SENTENCES = 6
SEARCH_LIMIT = 8
# Past answers are logged to memory/YYYY-MM-DD.md; when a note says the same, cite the note.
LOG_WEIGHT = 0.5
_DAILY_LOG = re.compile(r"(^|/)memory/\d{4}-\d{2}-\d{2}\.md$")
RELATIVE_FLOOR = 0.25  # drop sentences scoring under a quarter of the best one


async def retrieve(memory: MemorySearcher, question: str, limit: int) -> list[SearchHit]:
    """Passages for a question: the memory search as asked, then one with every term as a
    prefix (so "keys" also finds "key" and "logs" finds "logged"), merged without repeats."""
    hits = await memory.search(question, limit)
    stems = [t for t in query_terms(question) if len(t) >= 3]
    if not stems:
        return hits
    seen = {(h.file, h.line_start, h.line_end) for h in hits}
    wider = await memory.search(" ".join(f"{t}*" for t in stems), limit)
    extra = [h for h in wider if (h.file, h.line_start, h.line_end) not in seen]
    return hits + extra[: max(0, limit - len(hits) // 2)]


@dataclass(frozen=True)
class ExtractiveAnswer:
    text: str
    citations: list[Citation]


def _question(request: ChatRequest) -> str:
    return next((m.content for m in reversed(request.messages) if m.role == "user"), "").strip()


def nothing_found(question: str, reason: str = "") -> str:
    """The plain statement the builtin engine gives when the notes hold nothing relevant."""
    topic = question.strip().rstrip("?.! ") or "that"
    text = f"I found nothing in your notes about “{topic}”."
    if reason:
        text += f" {reason}"
    return text


def compose_answer(question: str, hits: Sequence[SearchHit]) -> ExtractiveAnswer:
    """Pick the sentences of `hits` that answer `question`, in reading order, each cited."""
    if not query_terms(question):
        return ExtractiveAnswer(
            "Ask about a topic (for example “what do my notes say about sqlite?”) and I will "
            "answer from your notes.",
            [],
        )
    sentences = []
    for index, hit in enumerate(hits):
        sentences.extend(split_sentences(hit.content, first_line=hit.line_start, source=index))
    top = max((h.score for h in hits), default=0.0)
    weights = [
        ((h.score / top) if top > 0 else 1.0) * (LOG_WEIGHT if _DAILY_LOG.search(h.file) else 1.0)
        for h in hits
    ]
    scored = score_sentences(sentences, question, source_weights=weights)
    chosen = select_sentences(scored, limit=MAX_SENTENCES, relative_floor=RELATIVE_FLOOR)
    if not chosen:
        return ExtractiveAnswer(nothing_found(question), [])
    book = CitationBook()
    paragraphs: list[str] = []
    for group in reading_order(chosen):
        hit = hits[group[0].sentence.source]
        parts: list[str] = []
        for item in group:
            s = item.sentence
            n = book.cite(hit.file, s.line_start, s.line_end, path=hit.path, text=s.text)
            parts.append(f"{s.text} [{n}]")
        lead = f"**{hit.heading}**: " if hit.heading else ""
        paragraphs.append(lead + " ".join(parts))
    intro = "From your notes:"
    return ExtractiveAnswer(intro + "\n\n" + "\n\n".join(paragraphs), book.citations)


class BuiltinProvider(Provider):
    """No model, no network: retrieval plus sentence extraction, cited to file and lines."""

    id = "builtin"
    needs_key = False
    default_model = "extractive"
    description = "Offline answers extracted from your notes (no model, no key)."

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        question = _question(request)
        hits = list(request.context)
        reason = ""
        if not hits and not request.retrieved:
            if self.memory is not None and query_terms(question):
                hits = await retrieve(self.memory, question, SEARCH_LIMIT)
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
