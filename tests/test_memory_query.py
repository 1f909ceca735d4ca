"""Query parsing and planning, re-ranking options, and the schema migration."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from localresearch.config.loader import ConfigError, set_value
from localresearch.errors import InvalidRequest
from localresearch.memory.query import build_match, by_budget, parse_terms
from localresearch.memory.rerank import length_factor, rerank
from localresearch.memory.schema import MIGRATIONS
from localresearch.memory.types import SearchHit

PIECES = ['"', "'", "AND", "OR", "NOT", "NEAR", "(", ")", "*", "^", ":", "-", "+", "{", "}",
          "\\", "\x00", "ü", "日本", "🦀", "\u200b", "\ud800", "rust", "col:x", "a*b", " ",
          "\n"]  # fmt: skip


def test_words_phrases_prefixes_and_common_words() -> None:
    # Every word counts (common words too: BM25's idf weighs them), each once, in order.
    assert parse_terms('The "Async Await" rust* of the rust') == [
        '"async await"',
        '"the"',
        '"rust"*',
        '"of"',
        '"rust"',
    ]
    assert parse_terms("the of and") == ['"the"', '"of"', '"and"']
    assert parse_terms("does not raise") == ['"does"', '"not"', '"raise"']
    assert parse_terms("🦀 !!") == []
    assert build_match("🦀") is None
    with pytest.raises(InvalidRequest):
        build_match("   ")


def test_random_nasty_text_always_gives_a_valid_fts5_query() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(heading, content, tokenize='porter unicode61')")
    conn.execute("INSERT INTO f VALUES ('Rust', 'async rust and unicode ü 日本')")
    rng = random.Random(3)
    for _ in range(500):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12)))
        if not text.strip():
            continue
        match = build_match(text)
        if match is not None:
            conn.execute("SELECT rowid FROM f WHERE f MATCH ?", (match,)).fetchall()


def test_budget_keeps_rare_terms_in_query_order() -> None:
    df = {"a": 500, "b": 5, "c": 0, "d": 50}
    assert by_budget(["a", "b", "c", "d"], df, 10_000, 1000) == ["a", "b", "d"]
    assert by_budget(["a", "b", "c", "d"], df, 10_000, 100) == ["b", "d"]
    assert by_budget(["a", "b", "d"], df, 20, 1000) == ["b"]
    assert by_budget(["a"], df, 1, 1) == ["a"]  # the rarest term always stays
    assert by_budget(["c"], df, 10, 10) == []


def _hit(chunk_id: int, score: float, content: str) -> SearchHit:
    return SearchHit("f.md", "/f.md", content, score, 1, 1, "", chunk_id)


def test_recency_boost_and_mmr_diversity() -> None:
    now = 1_000_000_000.0
    old, new = _hit(1, 10.0, "alpha beta"), _hit(2, 9.0, "gamma delta")
    mtimes = {1: now - 365 * 86400, 2: now}
    assert [h.chunk_id for h in rerank([old, new], mtimes, 0.5, 1.0, now)] == [2, 1]
    assert [h.chunk_id for h in rerank([old, new], mtimes, 0.0, 1.0, now)] == [1, 2]
    twin = _hit(3, 9.5, "alpha beta")
    diverse = rerank([old, twin, new], {}, 0.0, 0.5, now)
    assert [h.chunk_id for h in diverse] == [1, 2, 3]


def test_migration_002_keeps_indexed_chunks() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    (_, first), (_, second) = MIGRATIONS[:2]
    first(conn)
    conn.execute("INSERT INTO memory_files VALUES (1, '/n.md', '/', 'n.md', 'h', 1, 1, 1, 'now')")
    conn.execute("INSERT INTO memory_chunks VALUES (7, 1, 'Notes', 'platypus facts', 3, 4)")
    second(conn)
    row = conn.execute(
        "SELECT rowid, heading, content FROM memory_fts WHERE memory_fts MATCH 'platypus'"
    ).fetchone()
    assert row == (7, "Notes", "platypus facts")
    columns = [r[1] for r in conn.execute("PRAGMA table_info(memory_chunks)")]
    assert columns == ["id", "file_id", "line_start", "line_end"]


def test_length_prior_lifts_longer_chunks_a_little() -> None:
    hits = [(1, 10.0, 200), (2, 9.5, 2000), (3, 5.0, 4000)]  # chunk, BM25, characters
    scored = {chunk: bm25 * length_factor(chars, 0.15) for chunk, bm25, chars in hits}
    # 2 (10x longer) overtakes 1, but 3 (half the BM25 score) stays last.
    assert sorted(scored, key=scored.__getitem__, reverse=True) == [2, 1, 3]
    assert scored[2] == pytest.approx(9.5 * 2.0**0.15)
    assert length_factor(1000, 0.15) == 1.0
    assert length_factor(123, 0.0) == length_factor(0, 0.0) == 1.0


def test_length_prior_setting_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"between 0\.0 and 1\.0"):
        set_value(tmp_path / "config.toml", "memory.length_prior", "-1")
    set_value(tmp_path / "config.toml", "memory.length_prior", "0")
