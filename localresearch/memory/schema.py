"""The memory index's tables: sources, files, chunks and their FTS5 index (external content)."""

from __future__ import annotations

import sqlite3

from localresearch.store.migrations import Migration

# Chosen on the SciFact train queries (scripts/bench_memory.py; figures in docs/memory.md).
TOKENIZER = "porter unicode61 remove_diacritics 2"
RANK_WEIGHTS = (1.0, 1.0)  # heading path, content
RANK = f"bm25({RANK_WEIGHTS[0]}, {RANK_WEIGHTS[1]})"
_RANK_001 = "bm25(4.0, 1.0)"


_STATEMENTS = [
    """CREATE TABLE memory_sources (
        path TEXT PRIMARY KEY,
        glob TEXT NOT NULL DEFAULT '',
        added_at TEXT NOT NULL
    )""",
    """CREATE TABLE memory_files (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        rel TEXT NOT NULL,
        hash TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        chunks INTEGER NOT NULL,
        indexed_at TEXT NOT NULL
    )""",
    "CREATE INDEX memory_files_source ON memory_files(source)",
    """CREATE TABLE memory_chunks (
        id INTEGER PRIMARY KEY,
        file_id INTEGER NOT NULL REFERENCES memory_files(id) ON DELETE CASCADE,
        heading TEXT NOT NULL,
        content TEXT NOT NULL,
        line_start INTEGER NOT NULL,
        line_end INTEGER NOT NULL
    )""",
    "CREATE INDEX memory_chunks_file ON memory_chunks(file_id)",
    f"""CREATE VIRTUAL TABLE memory_fts USING fts5(
        heading, content, content='memory_chunks', content_rowid='id', tokenize='{TOKENIZER}'
    )""",
    """CREATE TRIGGER memory_chunks_ai AFTER INSERT ON memory_chunks BEGIN
        INSERT INTO memory_fts(rowid, heading, content)
        VALUES (new.id, new.heading, new.content);
    END""",
    """CREATE TRIGGER memory_chunks_ad AFTER DELETE ON memory_chunks BEGIN
        INSERT INTO memory_fts(memory_fts, rowid, heading, content)
        VALUES ('delete', old.id, old.heading, old.content);
    END""",
    """CREATE TRIGGER memory_chunks_au AFTER UPDATE ON memory_chunks BEGIN
        INSERT INTO memory_fts(memory_fts, rowid, heading, content)
        VALUES ('delete', old.id, old.heading, old.content);
        INSERT INTO memory_fts(rowid, heading, content)
        VALUES (new.id, new.heading, new.content);
    END""",
]


def _initial(conn: sqlite3.Connection) -> None:
    for statement in _STATEMENTS:
        conn.execute(statement)
    conn.execute("INSERT INTO memory_fts(memory_fts, rank) VALUES ('rank', ?)", (_RANK_001,))


def _fts_stores_content(conn: sqlite3.Connection) -> None:
    """The FTS table keeps the text itself (one insert per chunk instead of a row plus a
    trigger: indexing runs at the speed of raw FTS5 inserts); chunks keep only positions."""
    for trigger in ("memory_chunks_ai", "memory_chunks_ad", "memory_chunks_au"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.execute("DROP TABLE memory_fts")
    conn.execute(
        f"CREATE VIRTUAL TABLE memory_fts USING fts5(heading, content, tokenize='{TOKENIZER}')"
    )
    conn.execute(
        "INSERT INTO memory_fts(rowid, heading, content)"
        " SELECT id, heading, content FROM memory_chunks"
    )
    conn.execute("ALTER TABLE memory_chunks DROP COLUMN content")
    conn.execute("ALTER TABLE memory_chunks DROP COLUMN heading")
    conn.execute("INSERT INTO memory_fts(memory_fts, rank) VALUES ('rank', ?)", (RANK,))


def _vectors(conn: sqlite3.Connection) -> None:
    """Embedding vectors (unit-length float32 blobs) of chunks, for semantic search."""
    conn.execute(
        """CREATE TABLE memory_vectors (
            chunk_id INTEGER PRIMARY KEY,
            model TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vector BLOB NOT NULL
        )"""
    )


MIGRATIONS: list[Migration] = [
    ("memory.001_index", _initial),
    ("memory.002_fts_stores_content", _fts_stores_content),
    ("memory.003_vectors", _vectors),
]
