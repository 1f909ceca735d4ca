"""Readable text of each supported file type, as heading and paragraph blocks with line numbers.

Every extractor returns `Block`s whose `line_start`/`line_end` point into the original file
(Markdown, text, reStructuredText, HTML source lines) or into the PDF's extracted text, so that a
search hit can be opened at `file:line`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar, NamedTuple

from localresearch.errors import InvalidRequest


class Block(NamedTuple):
    """A heading (level >= 1) or a paragraph (level 0) of a document (a named tuple: a big
    indexing pass makes one per paragraph, and tuples cost a third of a frozen dataclass)."""

    text: str
    line_start: int
    line_end: int
    level: int = 0
    lines: tuple[tuple[int, str], ...] = ()  # (line number, text) for paragraphs


MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd"})
TEXT_SUFFIXES = frozenset({".txt", ".text"})
RST_SUFFIXES = frozenset({".rst", ".rest"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES | RST_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), falling back to Latin-1 so any text file stays readable."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def looks_binary(data: bytes) -> bool:
    """The heuristic git uses: a NUL byte in the first 8 KB means binary."""
    return b"\x00" in data[:8192]


def _paragraphs(numbered: Iterable[tuple[int, str]]) -> list[Block]:
    """Group consecutive non-blank lines into paragraph blocks."""
    blocks: list[Block] = []
    current: list[tuple[int, str]] = []
    for number, line in numbered:
        if line.strip():
            current.append((number, line))
            continue
        if current:
            blocks.append(_para(current))
            current = []
    if current:
        blocks.append(_para(current))
    return blocks


def _para(lines: list[tuple[int, str]]) -> Block:
    text = "\n".join([line for _, line in lines])
    return Block(text, lines[0][0], lines[-1][0], 0, tuple(lines))


# Greedy title, closing `#`s stripped in Python: a lazy `(.*?)` before `[ \t#]*$` retries the
# tail at every character (5 µs for a long title, most of a small note's extraction).
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# The first characters a fence, ATX heading or setext underline can start with: any other line
# is plain text, and most lines skip the three patterns.
_MARKUP_START = frozenset(" #`~=-")


def strip_html_comments(text: str) -> str:
    """Markdown without its `<!-- ... -->` comments (notes to the editor, not content), each line
    kept in place so line numbers still point at the file. Comments inside fenced code stay; an
    unclosed `<!--` is kept as text rather than hiding the rest of the file."""
    if "<!--" not in text:
        return text
    lines = text.splitlines()
    out: list[str] = []
    fence: str | None = None
    opened_at: int | None = None  # index of the line where an open comment started
    for index, line in enumerate(lines):
        if opened_at is None:
            if fence is not None:
                out.append(line)
                if line.strip().startswith(fence):
                    fence = None
                continue
            fenced = _FENCE.match(line)
            if fenced:
                fence = fenced.group(1)[:3]
                out.append(line)
                continue
            if "<!--" not in line:
                out.append(line)
                continue
        pieces: list[str] = []
        pos = 0
        while pos <= len(line):
            if opened_at is not None:
                end = line.find("-->", pos)
                if end < 0:
                    break
                pos = end + 3
                opened_at = None
            else:
                start = line.find("<!--", pos)
                if start < 0:
                    pieces.append(line[pos:])
                    break
                pieces.append(line[pos:start])
                pos = start + 4
                opened_at = index
        kept = "".join(pieces)
        out.append(kept.rstrip() if kept != line else line)
    if opened_at is not None:
        out[opened_at:] = lines[opened_at:]
    return "\n".join(out)


def markdown_blocks(text: str) -> list[Block]:
    """ATX and setext headings; fenced code stays inside its paragraph (a `#` there is not a
    heading); HTML comments are left out."""
    lines = strip_html_comments(text).splitlines()
    blocks: list[Block] = []
    para: list[tuple[int, str]] = []
    fence: str | None = None

    def flush() -> None:
        if para:
            blocks.append(_para(para))
            para.clear()

    for index, line in enumerate(lines):
        number = index + 1
        if fence is not None:
            para.append((number, line))
            if line.strip().startswith(fence):
                fence = None
            continue
        if line[:1] in _MARKUP_START:
            opened = _FENCE.match(line)
            if opened:
                fence = opened.group(1)[:3]
                para.append((number, line))
                continue
            atx = _ATX.match(line)
            if atx:
                flush()
                level = len(atx.group(1)) if _atx_title(atx) else 0
                blocks.append(Block(line, number, number, level, ((number, line),)))
                continue
            setext = _SETEXT.match(line)
            if setext and len(para) == 1:
                first_number, first_line = para[0]
                para.clear()
                level = 1 if setext.group(1)[0] == "=" else 2
                pair = ((first_number, first_line), (number, line))
                blocks.append(Block(f"{first_line}\n{line}", first_number, number, level, pair))
                continue
        if line.strip():
            para.append((number, line))
        else:
            flush()
    flush()
    return blocks


def _atx_title(atx: re.Match[str]) -> str:
    """An ATX heading's words, without its optional closing `#`s."""
    return (atx.group(2) or "").rstrip(" \t#").strip()


def heading_title(block: Block) -> str:
    """The words of a heading without its markup (`## Title` → `Title`)."""
    first = block.text.splitlines()[0] if block.text else ""
    atx = _ATX.match(first)
    if atx:
        return _atx_title(atx)
    return first.strip()


def text_blocks(text: str) -> list[Block]:
    return _paragraphs(enumerate(text.splitlines(), start=1))


_RST_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")


def rst_blocks(text: str) -> list[Block]:
    """Section titles are a line underlined (optionally overlined) by punctuation; each adornment
    style gets the next level in order of first appearance, as docutils does."""
    lines = text.splitlines()
    styles: list[tuple[str, bool]] = []
    blocks: list[Block] = []
    para: list[tuple[int, str]] = []
    i = 0

    def flush() -> None:
        if para:
            blocks.append(_para(para))
            para.clear()

    while i < len(lines):
        line = lines[i]
        over = _RST_ADORNMENT.match(line)
        if (
            over
            and i + 2 < len(lines)
            and lines[i + 1].strip()
            and _RST_ADORNMENT.match(lines[i + 2])
            and lines[i + 2].strip()[0] == over.group(1)
            and not para
        ):
            style = (over.group(1), True)
            if style not in styles:
                styles.append(style)
            flush()
            numbered = tuple((i + 1 + k, lines[i + k]) for k in range(3))
            blocks.append(
                Block(lines[i + 1].strip(), i + 1, i + 3, styles.index(style) + 1, numbered)
            )
            i += 3
            continue
        under = _RST_ADORNMENT.match(line)
        if under and len(para) == 1 and len(line.rstrip()) >= len(para[0][1].rstrip()):
            style = (under.group(1), False)
            if style not in styles:
                styles.append(style)
            number, title = para[0]
            para.clear()
            pair = ((number, title), (i + 1, line))
            blocks.append(Block(title.strip(), number, i + 1, styles.index(style) + 1, pair))
            i += 1
            continue
        if line.strip():
            para.append((i + 1, line))
        else:
            flush()
        i += 1
    flush()
    return blocks


class _ReadableHTML(HTMLParser):
    """Visible text of an HTML page by block elements, each with the source line it starts on."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "svg"})
    _BLOCK = frozenset(
        {
            "p", "div", "li", "ul", "ol", "br", "tr", "td", "th", "table", "section", "article",
            "header", "footer", "main", "nav", "aside", "blockquote", "pre", "dd", "dt", "dl",
            "figure", "figcaption", "hr", "form", "title",
        }
    )  # fmt: skip
    _HEADINGS: ClassVar[dict[str, int]] = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._skip_depth = 0
        self._lines: dict[int, list[str]] = {}  # source line -> the block's text on it
        self._level = 0

    def _flush(self) -> None:
        numbered = tuple(
            (number, text)
            for number, parts in sorted(self._lines.items())
            if (text := " ".join(" ".join(parts).split()))
        )
        if numbered:
            text = " ".join(line for _, line in numbered)
            if self._level:  # written as Markdown, so an answer tells a heading from its text
                mark = "#" * self._level + " "
                numbered = ((numbered[0][0], mark + numbered[0][1]), *numbered[1:])
            block = Block(text, numbered[0][0], numbered[-1][0], self._level, numbered)
            self.blocks.append(block)
        self._lines = {}
        self._level = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip_depth += 1
            return
        if tag in self._HEADINGS:
            self._flush()
            self._level = self._HEADINGS[tag]
        elif tag in self._BLOCK:
            self._flush()
            if tag == "title":
                self._level = 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if tag in self._HEADINGS or tag in self._BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        """Each piece of text stays on its source line, so a sentence is cited where it is."""
        if self._skip_depth or not data.strip():
            return
        line = self.getpos()[0]
        for offset, piece in enumerate(data.split("\n")):
            self._lines.setdefault(line + offset, []).append(piece)

    def close(self) -> None:
        super().close()
        self._flush()


def html_blocks(text: str) -> list[Block]:
    parser = _ReadableHTML()
    parser.feed(text)
    parser.close()
    return parser.blocks


def pdf_pages(data: bytes) -> list[tuple[int, list[Block]]]:
    """The text layer's paragraphs, page by page: (page number, blocks), line numbers counted
    within the page's extracted text (a PDF has no lines of its own to point at)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise InvalidRequest(f"unreadable PDF: {exc}") from exc
    return [
        (number, blocks)
        for number, text in enumerate(pages, start=1)
        if (blocks := _paragraphs(enumerate(text.splitlines(), start=1)))
    ]


def pdf_blocks(data: bytes) -> list[Block]:
    """Every page's blocks, each page under a `Page N` heading (lines counted within pages)."""
    blocks: list[Block] = []
    for number, page in pdf_pages(data):
        title = f"Page {number}"
        blocks.append(Block(title, 1, 1, 1, ((1, title),)))
        blocks.extend(page)
    return blocks


def _from_text(parse: Callable[[str], list[Block]]) -> Callable[[bytes], list[Block]]:
    return lambda data: parse(decode_text(data))


_EXTRACTORS: dict[str, Callable[[bytes], list[Block]]] = {}
for _suffixes, _parse in (
    (MARKDOWN_SUFFIXES, markdown_blocks),
    (TEXT_SUFFIXES, text_blocks),
    (RST_SUFFIXES, rst_blocks),
    (HTML_SUFFIXES, html_blocks),
):
    for _suffix in _suffixes:
        _EXTRACTORS[_suffix] = _from_text(_parse)
_EXTRACTORS[".pdf"] = pdf_blocks


def suffix_of(path: str) -> str:
    """A file name's suffix, lower-cased, as `Path.suffix` gives it (without building a Path:
    the walk and the workers ask this of every file)."""
    name = path[path.rfind("/") + 1 :]
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


def extract_blocks(path: Path | str, data: bytes) -> list[Block]:
    """Blocks of a file's content, chosen by its suffix (raises InvalidRequest if unsupported)."""
    suffix = suffix_of(str(path))
    extractor = _EXTRACTORS.get(suffix)
    if extractor is None:
        raise InvalidRequest(f"unsupported file type: {suffix or 'no suffix'}")
    return extractor(data)
