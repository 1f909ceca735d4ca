"""Citations that hold: every [n] names a listed source, every listed source was retrieved."""

from __future__ import annotations

import re
from collections.abc import Iterable

from localresearch.research.types import DimensionResult, Source

CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_SPACE = re.compile(r"\s+")


def number_sources(results: Iterable[DimensionResult]) -> tuple[dict[str, int], list[Source]]:
    """Number the retrieved sources 1..N in order of first appearance (ids are stable)."""
    numbering: dict[str, int] = {}
    ordered: list[Source] = []
    for result in results:
        for source in result.sources:
            if source.id not in numbering:
                numbering[source.id] = len(ordered) + 1
                ordered.append(source)
    return numbering, ordered


def cited_numbers(text: str) -> list[int]:
    found: list[int] = []
    for match in CITATION.finditer(text):
        found.extend(int(n) for n in match.group(1).split(","))
    return found


def strip_invalid(text: str, count: int) -> str:
    """Drop citation numbers that point to no listed source (models invent them)."""

    def fix(match: re.Match[str]) -> str:
        valid = [n.strip() for n in match.group(1).split(",") if 1 <= int(n) <= count]
        return f"[{', '.join(valid)}]" if valid else ""

    return CITATION.sub(fix, text)


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def passage_supports(passage: str, sentence: str) -> bool:
    """An extractive statement is only cited to a passage that contains it verbatim."""
    return normalise(sentence) in normalise(passage)


def sources_section(ordered: list[Source]) -> str:
    lines = ["", "## Sources", ""]
    for number, source in enumerate(ordered, start=1):
        title = source.title.replace("[", "(").replace("]", ")") or source.location
        link = f"[{title}]({source.url})" if source.url else title
        lines.append(f"{number}. {link} — `{source.location}`")
    return "\n".join(lines) + "\n"


def verify_report(body: str, count: int) -> list[str]:
    """Problems with a report body: citations outside 1..count (empty when it is sound)."""
    return [f"[{n}] names no listed source" for n in cited_numbers(body) if not 1 <= n <= count]
