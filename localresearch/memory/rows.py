"""The SQL that writes indexed files and chunks, shared by full passes and daily-log appends."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from localresearch.memory import kinds
from localresearch.memory.chunking import Chunk
from localresearch.memory.grams import grams_of
from localresearch.memory.schema import FTS_TABLES

NEXT_IDS = (
    "SELECT (SELECT coalesce(max(id), 0) + 1 FROM memory_files),"
    " (SELECT coalesce(max(id), 0) + 1 FROM memory_chunks)"
)
# A batch's rows arrive as JSON arrays: [id, path, source, rel, hash, size, mtime_ns, chunks,
# indexed_at] per file, [id, file_id, line_start, line_end, kind, page] and [position, heading,
# content, grams] per chunk (its id: the batch's first chunk id + its position), notes and
# derived text apart (each to its own FTS table).
INSERT_FILES = (
    "INSERT INTO memory_files (id, path, source, rel, hash, size, mtime_ns, chunks, indexed_at)"
    " SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6,"
    " value->>7, value->>8 FROM json_each(?)"
)
INSERT_CHUNKS = (
    "INSERT INTO memory_chunks (id, file_id, line_start, line_end, kind, page)"
    " SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5 FROM json_each(?)"
)
INSERT_FTS = (
    "INSERT INTO {} (rowid, heading, content, grams)"
    " SELECT ?1 + (value->>0), value->>1, value->>2, value->>3 FROM json_each(?2)"
)


def fts_rows(chunks: Iterable[Chunk]) -> tuple[str, str]:
    """Chunks' FTS rows as JSON, notes and derived text apart: [position, heading, content,
    grams]. Encoded on the indexing thread while the writer is busy with the previous batch."""
    notes: list[tuple[int, str, str, str]] = []
    derived: list[tuple[int, str, str, str]] = []
    for position, chunk in enumerate(chunks):
        heading, content = chunk.heading, chunk.content
        row = (position, heading, content, grams_of(heading + " " + content))
        (notes if chunk.kind == kinds.NOTE else derived).append(row)
    encoded = json.dumps(notes), json.dumps(derived)
    if "\\u0000" in encoded[0] or "\\u0000" in encoded[1]:
        # SQLite's JSON text ends at a NUL: leave them out (rare)
        clean = [
            [(p, h.replace("\0", ""), c.replace("\0", ""), g) for p, h, c, g in rows]
            for rows in (notes, derived)
        ]
        encoded = json.dumps(clean[0]), json.dumps(clean[1])
    return encoded


def delete_files(conn: sqlite3.Connection, file_ids: list[int]) -> int:
    """Delete files and their chunks (and their FTS rows)."""
    removed = 0
    for file_id in file_ids:
        removed += delete_chunks(conn, file_id)
        conn.execute("DELETE FROM memory_files WHERE id = ?", (file_id,))
    return removed


def delete_chunks(conn: sqlite3.Connection, file_id: int) -> int:
    conn.execute(
        "DELETE FROM memory_vectors WHERE chunk_id IN"
        " (SELECT id FROM memory_chunks WHERE file_id = ?)",
        (file_id,),
    )
    for table in FTS_TABLES:
        conn.execute(
            f"DELETE FROM {table} WHERE rowid IN (SELECT id FROM memory_chunks WHERE file_id = ?)",
            (file_id,),
        )
    cursor = conn.execute("DELETE FROM memory_chunks WHERE file_id = ?", (file_id,))
    return max(cursor.rowcount, 0)


def delete_chunks_from(conn: sqlite3.Connection, file_id: int, first_id: int, line: int) -> int:
    """Delete a file's chunks from id `first_id` and line `line` on (a daily log's tail)."""
    chosen = "SELECT id FROM memory_chunks WHERE file_id = ?1 AND id >= ?2 AND line_start >= ?3"
    where = (file_id, first_id, line)
    conn.execute(f"DELETE FROM memory_vectors WHERE chunk_id IN ({chosen})", where)
    for table in FTS_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE rowid IN ({chosen})", where)
    cursor = conn.execute(
        "DELETE FROM memory_chunks WHERE file_id = ?1 AND id >= ?2 AND line_start >= ?3", where
    )
    return max(cursor.rowcount, 0)
