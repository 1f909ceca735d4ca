"""Text from models and reports made safe for the day's log, whose structure is its headings.

The log is one `## HH:MM title` entry per event, and memory indexing splits it by heading, so an
entry's body must never carry headings of its own: they are demoted to bold text, and research
summaries are quoted and cut to the report's key findings or first paragraph.
"""

from __future__ import annotations

import re

DIGEST_CHARS = 700
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*#*[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_KEY_FINDINGS = re.compile(r"^(key\s+findings|findings|summary|executive\s+summary|tl;?dr)\b", re.I)


def demote_headings(text: str) -> str:
    """ATX and setext headings become bold lines; code fences are left as they are."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        opener = _FENCE.match(line)
        if fence is not None:
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                fence = None
            out.append(line)
            continue
        if opener:
            fence = opener.group(1)
            out.append(line)
            continue
        heading = _ATX.match(line)
        if heading:
            title = (heading.group(2) or "").strip()
            out.append(f"**{title}**" if title else "")
            continue
        if _SETEXT.match(line) and out and out[-1].strip():
            # "Title\n---" would make the line above a heading: make it bold instead
            if not out[-1].startswith("**"):
                out[-1] = f"**{out[-1].strip()}**"
            continue
        out.append(line)
    return "\n".join(out)


def quote(text: str) -> str:
    """A Markdown blockquote of `text` (headings demoted first), blank lines kept as `>`."""
    lines = demote_headings(text.strip()).splitlines() or [""]
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines)


def _sections(markdown: str) -> list[tuple[str, list[str]]]:
    """(heading title, body lines) in order; text before any heading has the title ''."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    fence = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fence = not fence
        heading = None if fence else _ATX.match(line)
        if heading:
            sections.append(((heading.group(2) or "").strip(), []))
        else:
            sections[-1][1].append(line)
    return sections


def _paragraphs(lines: list[str]) -> list[str]:
    return [p.strip() for p in "\n".join(lines).split("\n\n") if p.strip()]


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = head.rsplit("\n", 1)[0] if "\n" in head else head.rsplit(" ", 1)[0]
    return cut.rstrip() + " …"


def report_digest(markdown: str, limit: int = DIGEST_CHARS) -> str:
    """The report's key findings (else its first paragraph of prose), short and heading-free."""
    sections = _sections(markdown)
    for title, body in sections:
        if title and _KEY_FINDINGS.match(title):
            paragraphs = _paragraphs(body)
            if paragraphs:
                return demote_headings(_cut("\n\n".join(paragraphs), limit))
    for _title, body in sections:
        for paragraph in _paragraphs(body):
            if not _SETEXT.match(paragraph.splitlines()[-1]):
                return demote_headings(_cut(paragraph, limit))
    return ""
