"""How retrieved passages reach a language model: one numbered source list, strongest first,
so `[n]` in the answer maps back to file:lines."""

from __future__ import annotations

from collections.abc import Sequence

from localresearch.memory.types import SearchHit
from localresearch.providers.base import ChatRequest, Message

GROUNDING = (
    "Answer from the numbered sources below (most relevant first) when they are relevant. "
    "End every sentence that uses a source with its number in brackets, like [1] or [2]. "
    "If they do not contain the answer, say so plainly instead of guessing."
)
# A small model follows a short instruction next to the question better than a long system
# prompt: the sources, then the question, then what to write.
COMPACT_INSTRUCTION = (
    "What do the sources above say about this? Answer in one to three full sentences in your "
    "own words, and end each sentence with its source number in brackets."
)
MAX_SOURCE_CHARS = 2000


def format_sources(hits: Sequence[SearchHit], *, compact: bool = False) -> str:
    """The numbered source list; [n] is the hit's position (the search's rank), starting at 1.
    A compact list gives only the text (a small model copies file names into its answer)."""
    blocks = []
    for n, hit in enumerate(hits, start=1):
        content = hit.content.strip()
        if len(content) > MAX_SOURCE_CHARS:
            content = content[:MAX_SOURCE_CHARS] + " …"
        where = f"{hit.file}:{hit.line_start}-{hit.line_end}"
        blocks.append(f"[{n}] {content}" if compact else f"[{n}] {where}\n{content}")
    return "\n\n".join(blocks)


def prompt_messages(request: ChatRequest) -> list[Message]:
    """The request's messages with its context folded into the (first) system message, or, for
    a compact request, into the last user message, beside the question."""
    messages = list(request.messages)
    if not request.context:
        return messages
    if request.compact and messages and messages[-1].role == "user":
        question = messages[-1].content
        sources = format_sources(request.context, compact=True)
        messages[-1] = Message(
            "user", f"Sources:\n\n{sources}\n\nQuestion: {question}\n\n{COMPACT_INSTRUCTION}"
        )
        return messages
    sources = f"{GROUNDING}\n\nSources:\n\n{format_sources(request.context)}"
    if messages and messages[0].role == "system":
        first = messages[0]
        messages[0] = Message("system", f"{first.content}\n\n{sources}")
    else:
        messages.insert(0, Message("system", sources))
    return messages
