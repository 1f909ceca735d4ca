"""Extraction per file type and structure-aware chunking, with exact line numbers."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from localresearch.errors import InvalidRequest
from localresearch.memory.chunking import chunk_blocks
from localresearch.memory.extract import (
    extract_blocks,
    html_blocks,
    looks_binary,
    markdown_blocks,
    rst_blocks,
    text_blocks,
)
from localresearch.memory.prepare import pdf_chunks
from tests.memory_helpers import make_pdf

MARKDOWN = """# Notes

Intro paragraph, line two
continues here.

## Rust

### Async

Tokio runs futures.
```python
# not a heading
x = 1
```

Setext title
============

Closing words.
"""


def _lines_of(text: str, start: int, end: int) -> str:
    return "\n".join(text.splitlines()[start - 1 : end])


def test_markdown_headings_paths_and_exact_lines() -> None:
    chunks = chunk_blocks(markdown_blocks(MARKDOWN), 1200, 150)
    assert [(c.heading, c.line_start, c.line_end) for c in chunks] == [
        ("Notes", 1, 4),
        ("Notes > Rust > Async", 6, 14),
        ("Setext title", 16, 19),
    ]
    for chunk in chunks:
        # The chunk is exactly the file's text between its lines (blank lines collapsed).
        expected = [
            line for line in _lines_of(MARKDOWN, chunk.line_start, chunk.line_end).split("\n")
        ]
        assert [line for line in chunk.content.split("\n") if line] == [e for e in expected if e]
    assert "# not a heading" in chunks[1].content


def test_long_section_is_split_with_overlap_and_exact_lines() -> None:
    paragraphs = [f"Paragraph {i} " + " ".join(f"w{i}x{j}" for j in range(40)) for i in range(12)]
    text = "# Big\n\n" + "\n\n".join(paragraphs) + "\n"
    lines = text.splitlines()
    chunks = chunk_blocks(markdown_blocks(text), 600, 100)
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk.content) <= 600
        assert chunk.heading == "Big"
        # Every line of the chunk is on a line of the file within [line_start, line_end].
        window = lines[chunk.line_start - 1 : chunk.line_end]
        for piece in chunk.content.split("\n"):
            if piece:
                assert any(piece in line for line in window), (piece, chunk)
    # Consecutive chunks overlap: the next one starts with words from the end of the previous.
    for before, after in itertools.pairwise(chunks):
        first_words = after.content.split()[:3]
        assert " ".join(first_words) in before.content
    # Every paragraph is covered.
    joined = "\n".join(c.content for c in chunks)
    assert all(p.split()[1] in joined for p in paragraphs)


def test_very_long_line_is_cut_but_keeps_its_line_number() -> None:
    text = "intro\n\n" + "word " * 2000 + "\n\nend\n"
    chunks = chunk_blocks(text_blocks(text), 500, 50)
    assert all(len(c.content) <= 500 for c in chunks)
    middle = [c for c in chunks if c.line_start == 3 and c.line_end == 3]
    assert len(middle) >= 15
    assert chunks[-1].line_end == 5


def test_plain_text_paragraphs() -> None:
    blocks = text_blocks("first para\nstill first\n\n\nsecond\n")
    assert [(b.line_start, b.line_end) for b in blocks] == [(1, 2), (5, 5)]


def test_rst_titles_levels_in_order_of_appearance() -> None:
    text = """=====
Title
=====

Intro text.

Section A
---------

Body A.

Sub
~~~

Body sub.

Section B
---------

Body B.
"""
    chunks = chunk_blocks(rst_blocks(text), 1200, 0)
    assert [(c.heading, c.line_start, c.line_end) for c in chunks] == [
        ("Title", 1, 5),
        ("Title > Section A", 7, 10),
        ("Title > Section A > Sub", 12, 15),
        ("Title > Section B", 17, 20),
    ]


def test_html_readable_text_skips_scripts_and_keeps_source_lines() -> None:
    html = """<!doctype html>
<html><head><title>Page title</title>
<script>var secret = "hidden";</script><style>p { color: red }</style></head>
<body>
<h1>Main &amp; heading</h1>
<p>First paragraph
spanning lines.</p>
<h2>Sub</h2>
<ul><li>item one</li><li>item two</li></ul>
</body></html>
"""
    blocks = html_blocks(html)
    texts = [b.text for b in blocks]
    assert "Main & heading" in texts
    assert all("secret" not in t and "color" not in t for t in texts)
    chunks = chunk_blocks(blocks, 1200, 0)
    by_heading = {c.heading: c for c in chunks}
    # <title> is a heading too; a chunk holding only headings continues into the next section.
    para = by_heading["Main & heading"]
    assert (para.line_start, para.line_end) == (2, 7)
    # Every line of the chunk is the text of that line of the file (blank where none shows).
    source = html.splitlines()
    lines = para.content.split("\n")
    assert lines == [
        "# Page title",
        "",
        "",
        "# Main & heading",
        "First paragraph",
        "spanning lines.",
    ]
    for offset, line in enumerate(lines):
        assert line.lstrip("# ") in source[para.line_start - 1 + offset].replace("&amp;", "&")
    sub = by_heading["Main & heading > Sub"]
    assert sub.line_start == 8 and "item two" in sub.content


def test_pdf_text_layer_by_page() -> None:
    """Each page's chunks know their page; lines count within the page's extracted text."""
    data = make_pdf([["Quantum entanglement notes", "second line"], ["Page two mentions zebras"]])
    chunks = pdf_chunks(data, 1200, 0)
    assert [(c.heading, c.page) for c in chunks] == [("Page 1", 1), ("Page 2", 2)]
    assert chunks[0].content == "Quantum entanglement notes\nsecond line"
    assert (chunks[0].line_start, chunks[0].line_end) == (1, 2)
    assert (chunks[1].line_start, chunks[1].line_end) == (1, 1)
    assert "zebras" in chunks[1].content
    # Without pages (extract_blocks), each page still starts under its own heading.
    blocks = extract_blocks(Path("paper.pdf"), data)
    assert [b.text for b in blocks if b.level] == ["Page 1", "Page 2"]


def test_broken_pdf_and_unknown_types_raise_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        extract_blocks(Path("bad.pdf"), b"%PDF-1.4 garbage")
    with pytest.raises(InvalidRequest):
        extract_blocks(Path("image.png"), b"\x89PNG")


def test_binary_heuristic_and_latin1_fallback() -> None:
    assert looks_binary(b"abc\x00def")
    assert not looks_binary("héllo".encode())
    blocks = extract_blocks(Path("old.txt"), "caf\xe9 notes".encode("latin-1"))
    assert blocks[0].text == "café notes"


def test_markdown_html_comments_are_left_out_with_exact_lines() -> None:
    from localresearch.heartbeat.template import HEARTBEAT_TEMPLATE

    text = (
        "# Title\n"  # 1
        "\n"
        "Kept <!-- inline note --> words.\n"  # 3
        "<!--\n"  # 4
        "secret format docs\n"
        "## not a heading\n"
        "-->\n"  # 7
        "After the comment.\n"  # 8
        "```html\n"  # 9
        "<!-- code keeps it -->\n"
        "```\n"
        "\n"
        "Unclosed <!-- stays\n"  # 13
        "as text.\n"
    )
    blocks = markdown_blocks(text)
    joined = "\n".join(b.text for b in blocks)
    assert "secret" not in joined and "inline note" not in joined
    assert "not a heading" not in joined
    assert [b.level for b in blocks if b.level] == [1]
    kept = next(b for b in blocks if b.text.startswith("Kept"))
    assert (kept.text, kept.line_start, kept.line_end) == ("Kept  words.", 3, 3)
    after = next(b for b in blocks if b.text.startswith("After"))
    assert (after.line_start, after.line_end) == (8, 11)
    assert "<!-- code keeps it -->" in after.text
    unclosed = next(b for b in blocks if b.text.startswith("Unclosed"))
    assert (unclosed.text, unclosed.line_start) == ("Unclosed <!-- stays\nas text.", 13)
    chunks = chunk_blocks(markdown_blocks(HEARTBEAT_TEMPLATE))
    assert not any("priority:" in c.content or "How to write" in c.content for c in chunks)
    lines = HEARTBEAT_TEMPLATE.splitlines()
    pending = next(c for c in chunks if "## Pending" in c.content)
    first = pending.content.splitlines()[0]
    assert lines[pending.line_start - 1] == first
    assert lines[pending.line_end - 1] == pending.content.splitlines()[-1]
