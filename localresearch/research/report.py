"""Report text: the extractive body (builtin and partial reports) and md/html/json exports."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

from localresearch import extractive
from localresearch.research.citations import number_sources, sources_section, strip_markers
from localresearch.research.types import DimensionResult, Point


def _cite(source_id: str, numbering: dict[str, int]) -> str:
    number = numbering.get(source_id)
    return f" [{number}]" if number else ""


def extractive_paragraphs(
    query: str, results: list[DimensionResult], numbering: dict[str, int]
) -> Iterator[str]:
    """The report body, a paragraph at a time; each statement cites the passage it came from."""
    yield f"# {query.strip()}\n\n"
    total = len(numbering)
    if not results or not total:
        yield "No relevant sources were found in memory for this question.\n\n"
        return
    yield (
        f"This report draws on {total} source{'s' if total != 1 else ''} across "
        f"{len(results)} research dimension{'s' if len(results) != 1 else ''}.\n\n"
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
    said: set[str] = set()  # dimensions share sources: say each statement once
    missing: list[str] = []
    for result in results:
        fresh = [p for p in result.points if _speaks(p.text) and p.text not in said]
        said.update(p.text for p in fresh)
        statements = [f"{p.text}{_cite(p.source_id, numbering)}" for p in fresh]
        if statements:
            yield f"## {result.dimension}\n\n{' '.join(statements)}\n\n"
        elif not result.points:
            missing.append(result.dimension)  # no section without evidence: said once below
        # else: every statement was already made above under another dimension; no filler.
    if missing:
        names = ", ".join(f"“{m}”" for m in missing)
        yield f"Nothing in the {total} source{'s' if total != 1 else ''} addresses {names}.\n\n"


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
    numbering, ordered = number_sources(results)
    note = (
        f"> Partial report: the job was cancelled after {len(results)} "
        f"dimension{'s' if len(results) != 1 else ''}.\n\n"
    )
    paragraphs = list(extractive_paragraphs(query, results, numbering))
    body = paragraphs[0] + note + "".join(paragraphs[1:])
    return body + sources_section(ordered), [s.to_dict() for s in ordered]


_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")
_NUMBERED = re.compile(r"^\d+\.\s+")


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)

    def link(match: re.Match[str]) -> str:
        href = match.group(2)
        if not href.startswith(("http://", "https://", "file://")):
            return match.group(0)
        return f'<a href="{html.escape(href)}">{match.group(1)}</a>'

    return _LINK.sub(link, out)


def markdown_to_html(markdown: str, title: str) -> str:
    """A standalone page for the Markdown the reports use (headings, lists, quotes, links)."""
    parts: list[str] = []
    for block in re.split(r"\n\s*\n", markdown.strip()):
        lines = block.strip().splitlines()
        if not lines:
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)", lines[0])
        if heading and len(lines) == 1:
            level = len(heading.group(1))
            parts.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif all(re.match(r"^\d+\.\s", line) for line in lines):
            items = "".join(f"<li>{_inline(_NUMBERED.sub('', x))}</li>" for x in lines)
            parts.append(f"<ol>{items}</ol>")
        elif all(line.startswith("- ") for line in lines):
            items = "".join(f"<li>{_inline(x[2:])}</li>" for x in lines)
            parts.append(f"<ul>{items}</ul>")
        elif all(line.startswith(">") for line in lines):
            text = " ".join(line.lstrip("> ") for line in lines)
            parts.append(f"<blockquote>{_inline(text)}</blockquote>")
        else:
            parts.append(f"<p>{_inline(' '.join(lines))}</p>")
    body = "\n".join(parts)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:46em;margin:2em auto;"
        "line-height:1.5;padding:0 1em}code{font-size:.9em}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )
