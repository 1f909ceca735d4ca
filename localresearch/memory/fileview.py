"""Reading a cited file's lines, confined to the folders the user added to memory."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from localresearch.errors import InvalidRequest, LocalResearchError, NotFound
from localresearch.memory.extract import decode_text, looks_binary, suffix_of

MAX_FILE_BYTES = 20 * 1024 * 1024
DEFAULT_CONTEXT = 40
MAX_CONTEXT = 2000


class Forbidden(LocalResearchError):
    """A path outside every memory source (after resolving symlinks and `..`)."""

    code = "forbidden"


@dataclass(frozen=True)
class FileView:
    """A window of a file's lines around the cited ones (numbers are 1-based, inclusive)."""

    path: Path
    source: Path
    line_start: int
    line_end: int
    first_line: int
    lines: list[str]
    total_lines: int
    page: int | None = None

    @property
    def file(self) -> str:
        """The file's path within its source."""
        return self.path.relative_to(self.source).as_posix()


def confine(path: str, sources: Iterable[Path]) -> tuple[Path, Path]:
    """The real file a path names and the source holding it; a path outside every source
    (through `..`, a symlink or an absolute path) is refused, never opened."""
    if not path or not path.strip() or "\x00" in path:
        raise InvalidRequest("Missing required parameter: path")
    roots = [root.resolve() for root in sources]
    given = Path(path).expanduser()
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    inside = False
    for candidate in candidates:
        real = candidate.resolve()
        for root in roots:
            if real.is_relative_to(root):
                inside = True
                if real.is_file():
                    return real, root
    if inside:
        raise NotFound(f"No such file in memory sources: {path}")
    raise Forbidden(f"Not inside a memory source: {path}")


def read_lines(real: Path, page: int | None = None) -> list[str]:
    """The file's text lines as the index numbers them (a PDF's lines count within its page;
    without a page, its pages one after another)."""
    if real.stat().st_size > MAX_FILE_BYTES:
        raise InvalidRequest(f"File too large to show (over {MAX_FILE_BYTES} bytes): {real}")
    data = real.read_bytes()
    if suffix_of(str(real)) == ".pdf":
        return _pdf_lines(data, page)
    if looks_binary(data):
        raise InvalidRequest(f"Not a text file: {real}")
    return decode_text(data).splitlines()


def _pdf_lines(data: bytes, page: int | None) -> list[str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        pages = [page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise InvalidRequest(f"unreadable PDF: {exc}") from exc
    if page is not None:
        if not 1 <= page <= len(pages):
            raise NotFound(f"No page {page} in this PDF (it has {len(pages)})")
        return pages[page - 1].splitlines() or [""]
    lines: list[str] = []
    for text in pages:  # as extract.pdf_blocks counts them: an empty page takes one line
        lines.extend(text.splitlines() or [""])
    return lines


def view_file(
    path: str,
    sources: Iterable[Path],
    line: int = 1,
    end: int | None = None,
    context: int = DEFAULT_CONTEXT,
    page: int | None = None,
) -> FileView:
    """Lines `line`..`end` of a file under a memory source (of a PDF's `page`, where its
    citations count lines), with `context` lines either side."""
    real, root = confine(path, sources)
    try:
        lines = read_lines(real, page)
    except OSError as exc:
        raise NotFound(f"Cannot read {path}: {exc.strerror or exc}") from None
    total = len(lines)
    start = min(max(line, 1), max(total, 1))
    stop = min(max(end if end is not None else start, start), max(total, 1))
    context = min(max(context, 0), MAX_CONTEXT)
    first = max(start - context, 1)
    last = min(stop + context, total)
    return FileView(real, root, start, stop, first, lines[first - 1 : last], total, page)
