"""Reading a daily log by what was appended since the last pass, not the whole growing file.

The daemon appends one marked entry per chat (memory/kinds.py). Everything before the end of
the last complete entry is final: its chunks stay, and a pass reads only the bytes after that
point (the "resume point"), chunks them with the right line numbers and replaces the chunks
that started there. The resume point is kept with the file's row (inode, byte offset, line,
first chunk id after it, and a digest of every byte before it), so it holds across restarts; if
any of these no longer match (the file was rewritten, truncated, replaced or edited anywhere
before the point), the whole file is read again. The digest streams the prefix in blocks: it
costs CPU (about 20 ms for 10 MB), never the memory a whole read would.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass

from localresearch.memory import kinds
from localresearch.memory.chunking import Chunk
from localresearch.memory.extract import decode_text, looks_binary
from localresearch.memory.prepare import segment_chunks

READ_BLOCK = 1 << 20  # the prefix is hashed in blocks of this many bytes
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class LogState:
    """Where the next pass may start reading a daily log."""

    inode: int
    offset: int  # bytes before the resume point
    line: int  # the number of the first line after it
    chunk: int  # chunk ids from here on (of this file) start at or after the resume point
    head: str  # digest of every byte before `offset` (a state of 0.x with more keys: None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> LogState | None:
        if not raw:
            return None
        try:
            return cls(**json.loads(raw))
        except (TypeError, ValueError):
            return None


@dataclass
class LogRead:
    """What one pass read of a daily log: its chunks from `since_line` on (None: the whole file)
    and where the next pass may start (`resume`: byte offset, line; None: read it whole)."""

    size: int
    mtime_ns: int
    inode: int
    digest: str
    chunks: list[Chunk]
    since_line: int | None
    resume: tuple[int, int] | None
    head: str = ""
    skipped: str = ""  # why it is not indexed (binary, unreadable)


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _prefix_hasher(fd: int, offset: int) -> hashlib.blake2b:
    """A hasher fed the file's first `offset` bytes, read in bounded blocks."""
    hasher = hashlib.blake2b(digest_size=16)
    done = 0
    while done < offset:
        part = os.pread(fd, min(READ_BLOCK, offset - done), done)
        if not part:
            break
        hasher.update(part)
        done += len(part)
    return hasher


def _pread(fd: int, size: int, offset: int) -> bytes:
    parts: list[bytes] = []
    while size > 0:
        part = os.pread(fd, size, offset)
        if not part:
            break
        parts.append(part)
        size -= len(part)
        offset += len(part)
    return b"".join(parts)


def _resume(text: str, resumable: list[int], lines_with_ends: list[str]) -> tuple[int, int] | None:
    """(characters, lines) before the last resume point whose line ends in a newline (a line
    ending in "\\r" alone could still become "\\r\\n"), or None."""
    for index in reversed(resumable):
        if lines_with_ends[index - 1].endswith("\n"):
            return len("".join(lines_with_ends[:index])), index
    return None


def _chunks(
    text: str, first_line: int, chunk_chars: int, chunk_overlap: int
) -> tuple[list[Chunk], tuple[int, int] | None]:
    """Chunks of `text` (its first line numbered `first_line`) and its own resume point as
    (bytes into `text` encoded, lines into it)."""
    lines_with_ends = text.splitlines(keepends=True)
    lines = text.splitlines()
    segments, resumable = kinds.split_log_lines(lines, first_line)
    chunks = segment_chunks(segments, chunk_chars, chunk_overlap)
    found = _resume(text, resumable, lines_with_ends)
    if found is None:
        return chunks, None
    chars, count = found
    return chunks, (len(text[:chars].encode("utf-8")), count)


def read_log(
    path: str,
    state: LogState | None,
    chunk_chars: int,
    chunk_overlap: int,
    *,
    whole: bool,
) -> LogRead | None:
    """The log's new chunks: from its resume point if `state` still holds, else (if `whole`)
    from the whole file; None when only a whole read would do and `whole` is false."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        if not whole:
            return None
        return LogRead(0, 0, 0, "", [], None, None, skipped=f"unreadable: {exc.strerror or exc}")
    try:
        st = os.fstat(fd)
        size = st.st_size  # read up to here: bytes appended meanwhile wait for the next pass
        if state is not None and state.inode == st.st_ino and state.offset <= size:
            appended = _read_tail(fd, state, size, chunk_chars, chunk_overlap)
            if appended is not None:
                appended.mtime_ns, appended.inode = st.st_mtime_ns, st.st_ino
                return appended
        if not whole:
            return None
        return _read_whole(fd, size, st.st_mtime_ns, st.st_ino, chunk_chars, chunk_overlap)
    except OSError as exc:
        if not whole:
            return None
        return LogRead(0, 0, 0, "", [], None, None, skipped=f"unreadable: {exc.strerror or exc}")
    finally:
        os.close(fd)


def _read_tail(
    fd: int, state: LogState, size: int, chunk_chars: int, chunk_overlap: int
) -> LogRead | None:
    hasher = _prefix_hasher(fd, state.offset)
    if hasher.hexdigest() != state.head:
        return None  # changed before the resume point (or an older state): read it whole
    tail = _pread(fd, size - state.offset, state.offset)
    if len(tail) != size - state.offset or b"\x00" in tail:
        return None  # shrank meanwhile, or a NUL the whole-file rules decide about
    try:
        text = tail.decode("utf-8")
    except UnicodeDecodeError as exc:
        newline = tail.rfind(b"\n")
        if exc.start <= newline:
            return None  # not UTF-8 after all: the whole read decides how to decode it
        tail = tail[: newline + 1]  # a character cut by a write in progress: next time
        text = tail.decode("utf-8")
    chunks, found = _chunks(text, state.line, chunk_chars, chunk_overlap)
    offset, line = state.offset, state.line
    if found is not None:
        hasher.update(tail[: found[0]])
        offset, line = offset + found[0], line + found[1]
    head = hasher.hexdigest()
    end = state.offset + len(tail)
    return LogRead(end, 0, 0, head, chunks, state.line, (offset, line), head)


def _read_whole(
    fd: int, size: int, mtime_ns: int, inode: int, chunk_chars: int, chunk_overlap: int
) -> LogRead:
    data = _pread(fd, size, 0)
    if looks_binary(data):
        return LogRead(len(data), mtime_ns, inode, "", [], None, None, skipped="binary content")
    digest = _digest(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # Latin-1 as any other text file; read whole every time
        chunks = segment_chunks(
            kinds.split_daily_log(decode_text(data)), chunk_chars, chunk_overlap
        )
        return LogRead(len(data), mtime_ns, inode, digest, chunks, None, None)
    chunks, found = _chunks(text, 1, chunk_chars, chunk_overlap)
    resume = None
    head = ""
    if found is not None:
        offset = found[0] + (len(_BOM) if data.startswith(_BOM) else 0)
        resume = (offset, 1 + found[1])
        head = _digest(data[:offset])
    return LogRead(len(data), mtime_ns, inode, digest, chunks, None, resume, head)
