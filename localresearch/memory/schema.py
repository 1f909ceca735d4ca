"""The memory index's tables: sources, files, chunks and their FTS5 index (external content)."""

from __future__ import annotations

import sqlite3

from localresearch.store.migrations import Migration

# Chosen on the SciFact train queries (scripts/bench_memory.py; figures in docs/memory.md).
TOKENIZER = "porter unicode61 remove_diacritics 2"
RANK_WEIGHTS = (1.0, 1.0, 1.0)  # heading path, content, character pairs (memory/grams.py)
RANK = "bm25({}, {}, {})".format(*RANK_WEIGHTS)
_RANK_001 = "bm25(4.0, 1.0)"
_RANK_002 = "bm25(1.0, 1.0)"
# The user's notes, and the text the daemon wrote itself (memory/kinds.py): apart, so the
# second never moves the first's statistics.
NOTES_TABLE = "memory_fts"
DERIVED_TABLE = "memory_fts_derived"
FTS_TABLES = (NOTES_TABLE, DERIVED_TABLE)


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
    conn.execute("INSERT INTO memory_fts(memory_fts, rank) VALUES ('rank', ?)", (_RANK_002,))


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


def _create_fts(conn: sqlite3.Connection, table: str) -> None:
    conn.execute(
        f"CREATE VIRTUAL TABLE {table} USING fts5(heading, content, grams, tokenize='{TOKENIZER}')"
    )
    conn.execute(f"INSERT INTO {table}({table}, rank) VALUES ('rank', ?)", (RANK,))


def _kinds_and_grams(conn: sqlite3.Connection) -> None:
    """Chunks get a kind (the user's note, or a log, digest or task list the daemon wrote) and
    a page (PDFs), derived text its own FTS table, and every chunk a `grams` column for
    unspaced scripts."""
    from localresearch.memory.grams import grams_of

    conn.create_function("lr_grams", 1, grams_of, deterministic=True)
    conn.execute("ALTER TABLE memory_chunks ADD COLUMN kind TEXT NOT NULL DEFAULT 'note'")
    conn.execute("ALTER TABLE memory_chunks ADD COLUMN page INTEGER")
    _create_fts(conn, "memory_fts_new")
    conn.execute(
        "INSERT INTO memory_fts_new(rowid, heading, content, grams)"
        " SELECT rowid, heading, content, lr_grams(heading || ' ' || content) FROM memory_fts"
    )
    conn.execute("DROP TABLE memory_fts")
    conn.execute(f"ALTER TABLE memory_fts_new RENAME TO {NOTES_TABLE}")
    _create_fts(conn, DERIVED_TABLE)
    # Read again on the next pass: logs and HEARTBEAT.md to be sorted by kind, PDFs to learn
    # their pages, HTML to place every line where it is in the file.
    conn.execute(
        "UPDATE memory_files SET hash = '', size = -1 WHERE rel = 'HEARTBEAT.md'"
        " OR rel GLOB 'memory/[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9].md'"
        " OR lower(rel) GLOB '*.pdf' OR lower(rel) GLOB '*.htm' OR lower(rel) GLOB '*.html'"
        " OR lower(rel) GLOB '*.xhtml'"
    )


def _log_state(conn: sqlite3.Connection) -> None:
    """Where the next pass may resume reading a daily log (memory/daily_log.py), as JSON."""
    conn.execute("ALTER TABLE memory_files ADD COLUMN log_state TEXT")


MIGRATIONS: list[Migration] = [
    ("memory.001_index", _initial),
    ("memory.002_fts_stores_content", _fts_stores_content),
    ("memory.003_vectors", _vectors),
    ("memory.004_kinds_and_grams", _kinds_and_grams),
    ("memory.005_log_state", _log_state),
]
