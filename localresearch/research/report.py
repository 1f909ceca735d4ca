"""Report text: the extractive body (builtin and partial reports) and md/html/json exports."""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterator
from typing import Any

from localresearch import extractive
from localresearch.research.citations import (
    cited_numbers,
    number_sources,
    sources_section,
    strip_markers,
)
from localresearch.research.types import DimensionResult, Point, Source


def _cite(source_id: str, numbering: dict[str, int]) -> str:
    number = numbering.get(source_id)
    return f" [{number}]" if number else ""


def extractive_paragraphs(
    query: str, results: list[DimensionResult], numbering: dict[str, int]
) -> Iterator[str]:
    """The report body, a paragraph at a time; each statement cites the passage it came from.
    It counts every dimension researched (as the progress table does) and how many have a
    section; those with nothing of their own to say are named at the end, as are those no
    source addresses."""
    yield f"# {query.strip()}\n\n"
    total = len(numbering)
    if not results or not total:
        yield "No relevant sources were found in memory for this question.\n\n"
        return
    said: set[str] = set()  # dimensions share sources: say each statement once
    sections: list[tuple[DimensionResult, list[str]]] = []
    missing: list[str] = []
    repeated: list[str] = []
    for result in results:
        fresh = [p for p in result.points if _speaks(p.text) and p.text not in said]
        said.update(p.text for p in fresh)
        statements = [f"{p.text}{_cite(p.source_id, numbering)}" for p in fresh]
        if statements:
            sections.append((result, statements))
        elif not result.points:
            missing.append(result.dimension)  # no section without evidence: said once below
        else:  # every statement was already made under another dimension: no filler section
            repeated.append(result.dimension)
    shown, researched = len(sections), len(results)
    own = ""
    if shown != researched:
        own = f" ({shown} with a section of {'its' if shown == 1 else 'their'} own)"
    yield (
        f"This report draws on {total} source{'s' if total != 1 else ''} across "
        f"{researched} research dimension{'s' if researched != 1 else ''}{own}.\n\n"
    )
    findings: list[str] = []
    used: list[str] = []  # each dimension surfaces its own finding, not one they all share
    for result in results:
        finding = _fresh_finding(result, used)
        if finding is None:
            continue
        used.append(finding.text)
        findings.append(
            f"- **{result.dimension}**: {finding.text}{_cite(finding.source_id, numbering)}"
        )
    if findings:
        yield "## Key findings\n\n" + "\n".join(findings) + "\n\n"
    for result, statements in sections:
        yield f"## {result.dimension}\n\n{' '.join(statements)}\n\n"
    if repeated:
        names = _names(repeated)
        verb = "adds" if len(repeated) == 1 else "add"
        yield f"{names} {verb} nothing the sections above do not already say.\n\n"
    if missing:
        names = _names(missing)
        yield f"Nothing in the {total} source{'s' if total != 1 else ''} addresses {names}.\n\n"


def report_numbering(
    query: str, results: list[DimensionResult]
) -> tuple[dict[str, int], list[Source]]:
    """The extractive report's sources: those it cites and no other, numbered strongest first
    (a note retrieved for a dimension but quoted nowhere is not listed)."""
    numbering, ordered = number_sources(results)
    body = "".join(extractive_paragraphs(query, results, numbering))
    cited = {ordered[n - 1].id for n in cited_numbers(body) if 1 <= n <= len(ordered)}
    return number_sources(results, only=cited)


def _names(dimensions: list[str]) -> str:
    quoted = [f"“{d}”" for d in dimensions]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _speaks(text: str) -> bool:
    """A statement with words of its own (not only citation markers or punctuation)."""
    return bool(_WORDS.search(strip_markers(text)))


def _fresh_finding(result: DimensionResult, used: list[str]) -> Point | None:
    """The dimension's best point that no earlier dimension already gave as its key finding."""
    ordered = sorted(result.points, key=lambda p: p.text != result.key_finding)  # key first
    for point in ordered:
        if not _speaks(point.text):
            continue
        if any(point.text == u or extractive.similarity(point.text, u) > 0.6 for u in used):
            continue
        return point
    return None


_WORDS = re.compile(r"[^\W\d_]{2,}")


def partial_report(query: str, results: list[DimensionResult]) -> tuple[str, list[dict[str, Any]]]:
    """What a cancelled job keeps: the completed dimensions, cited, with their sources."""
    numbering, ordered = report_numbering(query, results)
    note = (
        f"> Partial report: the job was cancelled after {len(results)} "
        f"dimension{'s' if len(results) != 1 else ''}.\n\n"
    )
    paragraphs = list(extractive_paragraphs(query, results, numbering))
    body = paragraphs[0] + note + "".join(paragraphs[1:])
    return body + sources_section(ordered), [s.to_dict() for s in ordered]


_LINK_SCHEMES = ("http://", "https://", "file://")


def _allowed_link(url: str) -> bool:
    return url.strip().lower().startswith(_LINK_SCHEMES)


@functools.cache
def _markdown() -> Any:
    """CommonMark with tables, raw HTML escaped, and links only to web pages and the user's
    files (a `javascript:` link in a fetched page's title stays text)."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")
    # markdown-it's documented way to choose which links are kept
    md.validateLink = _allowed_link  # type: ignore[method-assign]
    return md


def markdown_to_html(markdown: str, title: str) -> str:
    """A standalone page for a report (markdown-it-py: CommonMark, tables, fenced code)."""
    body = _markdown().render(markdown).rstrip("\n")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:46em;margin:2em auto;"
        "line-height:1.5;padding:0 1em}code{font-size:.9em}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )
