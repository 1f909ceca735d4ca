"""Structure-aware chunking: sections by heading, whole paragraphs when they fit, a size cap with
overlap when they do not, and exact line numbers for every chunk."""

from __future__ import annotations

from typing import NamedTuple

from localresearch.memory.extract import Block, heading_title

HEADING_SEPARATOR = " > "
# A chunk's lines sit as they sit in the file (blank lines kept), so the n-th line of a chunk is
# its first line + n - 1 and a sentence is cited at its own line; a gap of more blank or
# invisible lines than this (an HTML script, say) starts a new chunk instead.
MAX_LINE_GAP = 12


class Chunk(NamedTuple):
    """One indexed passage: its text, the headings above it and where it sits in the file (a
    named tuple: worker processes send thousands of them, and tuples pickle 3x faster)."""

    content: str
    heading: str
    line_start: int
    line_end: int
    kind: str = "note"  # memory/kinds.py: the user's note, or text the daemon wrote
    page: int | None = None  # PDFs: the page (line numbers count within it)


# A unit is one line (or one piece of a too-long line): (line number, text, starts a paragraph,
# last line it covers: an HTML paragraph's text can span several source lines).
_Unit = tuple[int, str, bool, int]


def _cut(text: str, room: int) -> tuple[str, str]:
    """The head of a line that fits in `room` characters (cut at whitespace if possible)."""
    if len(text) <= room:
        return text, ""
    cut = text.rfind(" ", room // 2, room)
    if cut <= 0:
        cut = room
    return text[:cut].rstrip(), text[cut:].lstrip()


def _tail(units: list[_Unit], overlap: int) -> list[_Unit]:
    """The last lines of a chunk, at most `overlap` characters, repeated in the next one."""
    if overlap <= 0 or not units:
        return []
    kept: list[_Unit] = []
    size = 0
    for number, text, _, last in reversed(units):
        if size + len(text) + 1 > overlap:
            if not kept:
                piece = text[-overlap:]
                space = piece.find(" ")
                piece = piece[space + 1 :] if 0 <= space < len(piece) - 1 else piece
                kept.append((number, piece, True, last))
            break
        kept.append((number, text, False, last))
        size += len(text) + 1
    kept.reverse()
    first_number, first_text, _, first_last = kept[0]
    kept[0] = (first_number, first_text, True, first_last)
    return kept


class _Packer:
    """Accumulates the units of one section and emits chunks no larger than the cap."""

    def __init__(self, cap: int, overlap: int) -> None:
        self.cap = cap
        self.overlap = min(overlap, cap // 2)
        self.chunks: list[Chunk] = []
        self.units: list[_Unit] = []
        self.size = 0
        self.has_body = False
        self.is_tail = False
        self.heading = ""

    def _emit(self, *, keep_tail: bool) -> None:
        units = self.units
        if not units:
            return
        line_start, first, _, line_end = units[0]
        parts = [first]
        for number, text, _, last in units[1:]:
            gap = number - line_end
            parts.append("\n" * gap if gap > 0 else " ")  # pieces of one line stay on it
            parts.append(text)
            if last > line_end:
                line_end = last
        content = "".join(parts).strip()
        if content:
            self.chunks.append(Chunk(content, self.heading, line_start, line_end))
        tail = _tail(units, self.overlap) if keep_tail and self.has_body else []
        self.units = tail
        self.size = sum([len(unit[1]) + 1 for unit in tail])
        self.has_body = False
        self.is_tail = bool(tail)

    def section(self, heading: str, block: Block) -> None:
        """A heading starts a new chunk unless the current one holds only headings."""
        if self.has_body:
            self._emit(keep_tail=False)
        elif self.is_tail:
            self._reset()
        if self.units and self.size + len(block.text) > self.cap:
            self._emit(keep_tail=False)
        self.heading = heading
        for i, (number, text) in enumerate(block.lines or ((block.line_start, block.text),)):
            self.units.append((number, text, i == 0 and bool(self.units), number))
            self.size += len(text) + 1

    def paragraph(self, block: Block) -> None:
        lines = block.lines or ((block.line_start, block.text),)
        if self.units and block.line_start - self.units[-1][3] > MAX_LINE_GAP:
            if self.has_body:
                self._emit(keep_tail=False)
            elif self.is_tail:
                self._reset()
        total = sum(len(text) + 1 for _, text in lines)
        if self.has_body and self.size + total + 1 > self.cap:
            self._emit(keep_tail=True)
            if self.size + total + 1 > self.cap:
                self._reset()
        first = True
        last_index = len(lines) - 1
        for index, (number, line) in enumerate(lines):
            last = max(block.line_end, number) if index == last_index else number
            rest = line
            while rest:
                room = self.cap - self.size - 1
                if room < min(len(rest), self.cap // 4) and self.units:
                    self._emit(keep_tail=self.has_body)
                    room = self.cap - self.size - 1
                piece, rest = _cut(rest, max(room, 1))
                self.units.append((number, piece, first and bool(self.units), last))
                self.size += len(piece) + 1
                self.has_body = True
                self.is_tail = False
                first = False

    def _reset(self) -> None:
        self.units = []
        self.size = 0
        self.is_tail = False

    def finish(self) -> list[Chunk]:
        self._emit(keep_tail=False)
        return self.chunks


def chunk_blocks(blocks: list[Block], chunk_chars: int = 1200, overlap: int = 150) -> list[Chunk]:
    """Chunks of a document: each keeps its heading path and its first and last line."""
    cap = max(chunk_chars, 64)
    packer = _Packer(cap, max(overlap, 0))
    stack: list[tuple[int, str]] = []
    for block in blocks:
        if block.level > 0:
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, heading_title(block)))
            packer.section(HEADING_SEPARATOR.join(title for _, title in stack), block)
        else:
            packer.paragraph(block)
    return packer.finish()
