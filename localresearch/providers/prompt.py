"""How retrieved passages reach a language model: one numbered source list in the system prompt,
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
MAX_SOURCE_CHARS = 2000


def format_sources(hits: Sequence[SearchHit]) -> str:
    """The numbered source list; [n] is the hit's position, starting at 1."""
    blocks = []
    for n, hit in enumerate(hits, start=1):
        where = f"{hit.file}:{hit.line_start}-{hit.line_end}"
        content = hit.content.strip()
        if len(content) > MAX_SOURCE_CHARS:
            content = content[:MAX_SOURCE_CHARS] + " …"
        blocks.append(f"[{n}] {where}\n{content}")
    return "\n\n".join(blocks)


def prompt_messages(request: ChatRequest) -> list[Message]:
    """The request's messages with its context folded into the (first) system message."""
    messages = list(request.messages)
    if not request.context:
        return messages
    sources = f"{GROUNDING}\n\nSources:\n\n{format_sources(request.context)}"
    if messages and messages[0].role == "system":
        first = messages[0]
        messages[0] = Message("system", f"{first.content}\n\n{sources}")
    else:
        messages.insert(0, Message("system", sources))
    return messages
