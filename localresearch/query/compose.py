"""A research job told as a query's result: its reasoning steps, citations and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from localresearch.events import Event
from localresearch.plural import counted


@dataclass
class Step:
    """One reasoning step as it completed: a kind (scope, dimension, gap_round, synthesis,
    error) and a sentence a person can read."""

    kind: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text}


@dataclass
class QueryResult:
    """What the query API answers: the report, what it cites, how it got there."""

    version: str
    answer: str
    citations: list[str]
    reasoning: list[str]
    cycles_completed: int
    input_tokens: int
    output_tokens: int
    research_id: str
    status: str = "complete"  # or "error" / "cancelled": the job's own final status
    error: str | None = None
    error_code: str = "internal_error"
    steps: list[Step] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The spec's response object (plus the research job's id)."""
        return {
            "version": self.version,
            "answer": self.answer,
            "citations": self.citations,
            "reasoning": self.reasoning,
            "metrics": {
                "cycles_completed": self.cycles_completed,
                "total_tokens": {
                    "input": self.input_tokens,
                    "output": self.output_tokens,
                    "total": self.input_tokens + self.output_tokens,
                },
            },
            "research_id": self.research_id,
        }


def step_of(event: Event) -> Step | None:
    """The reasoning step an event completes, or None for events inside a step."""
    data = event.data if isinstance(event.data, dict) else {}
    kind = event.type
    if kind == "scope_complete":
        dims = [str(d) for d in data.get("dimensions", [])]
        noun = "dimension" if len(dims) == 1 else "dimensions"
        return Step("scope", f"Scoped the question into {len(dims)} {noun}: {'; '.join(dims)}")
    if kind == "dimension_complete":
        finding = str(data.get("keyFinding") or "") or _first_sentence(str(data.get("summary", "")))
        count = data.get("sourceCount", 0)
        text = (
            f"{data.get('dimension', '')}: {finding or 'no finding'} ({counted(count, 'source')})"
        )
        return Step("dimension", text)
    if kind == "evaluate_complete":
        gaps = [str(g) for g in data.get("gaps", [])]
        new = [str(d) for d in data.get("newDimensions", [])]
        if not gaps and not new:
            return Step("gap_round", "Gap round: no gaps found")
        text = f"Gap round: {'; '.join(gaps) or 'gaps found'}"
        if new:
            text += f" → researching {'; '.join(new)}"
        return Step("gap_round", text)
    if kind == "synthesis_complete":
        return Step("synthesis", "Synthesised the answer from the cited sources")
    if kind == "error":
        return Step("error", f"Error: {data.get('message', 'the research failed')}")
    if kind == "done" and data.get("status") == "cancelled":
        return Step("cancelled", "Canceled")
    return None


def _first_sentence(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    cut = text.find(". ")
    text = text[: cut + 1] if 0 < cut < limit else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def citation_of(source: dict[str, Any]) -> str:
    """file:line for a note, the URL for a web page."""
    if source.get("kind") == "web":
        return str(source.get("url") or source.get("location") or "")
    return str(source.get("location") or source.get("url") or "")


def tokens(usage: dict[str, dict[str, int]]) -> tuple[int, int]:
    """Input and output tokens over a job's completed steps."""
    return (
        sum(u.get("prompt_tokens", 0) for u in usage.values()),
        sum(u.get("completion_tokens", 0) for u in usage.values()),
    )


def cycles(usage: dict[str, dict[str, int]], steps: list[Step]) -> int:
    """Gap-evaluation rounds run (checkpointed ones, or those seen live)."""
    counted = sum(1 for name in usage if name.startswith("evaluate:"))
    return max(counted, sum(1 for s in steps if s.kind == "gap_round"))
