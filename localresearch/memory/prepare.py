"""Reading, hashing, extracting and chunking one file: the work indexing hands to worker processes.

Kept apart from the indexer and light to import (no asyncio, no database), so a spawned worker
is ready in a fraction of the time the whole daemon takes to import.
"""

from __future__ import annotations

import hashlib
import logging
import os

from localresearch.errors import LocalResearchError
from localresearch.memory import kinds
from localresearch.memory.chunking import Chunk, chunk_blocks
from localresearch.memory.extract import (
    Block,
    decode_text,
    extract_blocks,
    looks_binary,
    markdown_blocks,
    pdf_pages,
    suffix_of,
)

log = logging.getLogger(__name__)

# (content digest, chunks | None when unchanged | the reason it is skipped)
Outcome = tuple[str, list[Chunk] | str | None]
Job = tuple[str, str | None, int, int, str]  # path, old digest, chunk size, overlap, role


def _read(path: str) -> bytes:
    """The whole file, with plain os calls (a third cheaper than Path.read_bytes per file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        chunks = [os.read(fd, size + 1)]
        while chunks[-1]:
            chunks.append(os.read(fd, 1 << 20))
        return b"".join(chunks)
    finally:
        os.close(fd)


def prepare_file(
    path: str,
    old_digest: str | None,
    chunk_chars: int,
    chunk_overlap: int,
    role: str = kinds.ROLE_PLAIN,
) -> Outcome:
    """(digest, chunks) for a file; chunks None if its digest is `old_digest` (unchanged), or a
    reason string if it must be skipped. Pure, so it can run in a worker process."""
    try:
        data = _read(path)
    except OSError as exc:
        return "", f"unreadable: {exc.strerror or exc}"
    if suffix_of(path) != ".pdf" and looks_binary(data):
        return "", "binary content"
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    if old_digest == digest:
        return digest, None
    if role == kinds.ROLE_DAILY_LOG:
        return digest, daily_log_chunks(decode_text(data), chunk_chars, chunk_overlap)
    if suffix_of(path) == ".pdf":
        try:
            return digest, pdf_chunks(data, chunk_chars, chunk_overlap)
        except LocalResearchError as exc:
            return digest, exc.message
        except Exception as exc:  # a parser bug must not stop the whole pass
            log.warning("could not extract %s: %r", path, exc)
            return digest, f"could not extract text: {exc}"
    try:
        blocks = extract_blocks(path, data)
    except LocalResearchError as exc:
        return digest, exc.message
    except Exception as exc:  # a parser bug must not stop the whole pass
        log.warning("could not extract %s: %r", path, exc)
        return digest, f"could not extract text: {exc}"
    chunks = chunk_blocks(blocks, chunk_chars, chunk_overlap)
    if role == kinds.ROLE_HEARTBEAT:
        chunks = [chunk._replace(kind=kinds.HEARTBEAT) for chunk in chunks]
    return digest, chunks


def _shifted(blocks: list[Block], offset: int) -> list[Block]:
    return [
        Block(
            b.text,
            b.line_start + offset,
            b.line_end + offset,
            b.level,
            tuple((number + offset, line) for number, line in b.lines),
        )
        for b in blocks
    ]


def pdf_chunks(data: bytes, chunk_chars: int, chunk_overlap: int) -> list[Chunk]:
    """A PDF's chunks, page by page: each knows its page, its lines count within the page."""
    chunks: list[Chunk] = []
    for number, blocks in pdf_pages(data):
        for chunk in chunk_blocks(blocks, chunk_chars, chunk_overlap):
            chunks.append(chunk._replace(heading=f"Page {number}", page=number))
    return chunks


def daily_log_chunks(
    text: str, chunk_chars: int, chunk_overlap: int, first_line: int = 1
) -> list[Chunk]:
    """A daily log's chunks: the daemon's entries tagged with their kind, the rest notes."""
    return segment_chunks(kinds.split_daily_log(text, first_line), chunk_chars, chunk_overlap)


def segment_chunks(
    segments: list[kinds.Segment], chunk_chars: int, chunk_overlap: int
) -> list[Chunk]:
    """The chunks of a daily log's segments, each segment on its own (headings, overlap)."""
    chunks: list[Chunk] = []
    for segment in segments:
        blocks = _shifted(markdown_blocks("\n".join(segment.lines)), segment.first_line - 1)
        for chunk in chunk_blocks(blocks, chunk_chars, chunk_overlap):
            chunks.append(chunk._replace(kind=segment.kind))
    return chunks


def prepare_files(jobs: list[Job]) -> list[Outcome]:
    """prepare_file for a batch (one round trip to a worker process per batch)."""
    return [prepare_file(*job) for job in jobs]


def warm_up() -> None:
    """A no-op task: submitting it makes a process pool start its workers right away."""
