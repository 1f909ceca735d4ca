"""Walking, incremental indexing, sources and the watcher, on a real SQLite file."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from localresearch.config import Config
from localresearch.errors import Conflict, InvalidRequest, NotFound
from localresearch.memory import ranking
from localresearch.memory.scan import Found, Skipped, walk_source
from localresearch.memory.service import MemoryService
from localresearch.paths import Paths
from localresearch.store import Database
from tests.memory_helpers import make_pdf


def _memory_config(config: Config, **changes: object) -> Config:
    memory = dataclasses.replace(config.memory, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(config, memory=memory)


@pytest.fixture
async def service_factory(config: Config, paths: Paths) -> AsyncIterator[object]:
    """Start a MemoryService on the real database; stop everything afterwards."""
    started: list[tuple[MemoryService, Database]] = []

    async def make(**changes: object) -> MemoryService:
        db = Database(paths.database)
        await asyncio.to_thread(db.open)
        changes.setdefault("watch", False)
        service = MemoryService(_memory_config(config, **changes), paths, db)
        await service.start()
        await service.wait_ready()
        started.append((service, db))
        return service

    yield make
    for service, db in started:
        await service.stop()
        await asyncio.to_thread(db.close)


def _tree(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")


def test_walk_skips_hidden_ignored_unsupported_with_reasons(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            ".gitignore": "build/\n*.log.md\n!keep.log.md\n",
            "notes.md": "# n\n",
            "keep.log.md": "kept by negation\n",
            "debug.log.md": "ignored\n",
            "build/out.md": "ignored folder\n",
            ".hidden/secret.md": "hidden\n",
            ".dot.md": "hidden file\n",
            ".DS_Store": b"\x00\x01",
            ".HEARTBEAT.md.lock": "",
            "image.png": b"\x89PNG\x00",
            "sub/.gitignore": "local.md\n",
            "sub/local.md": "ignored by nested gitignore\n",
            "sub/page.html": "<p>hi</p>",
            "sub/deep/doc.rst": "Title\n=====\n",
        },
    )
    items = list(walk_source(tmp_path))
    found = sorted(i.rel for i in items if isinstance(i, Found))
    assert found == ["keep.log.md", "notes.md", "sub/deep/doc.rst", "sub/page.html"]
    reasons = {Path(i.path).name: i.reason for i in items if isinstance(i, Skipped)}
    assert reasons["debug.log.md"] == "ignored by .gitignore"
    assert reasons["build"] == "ignored by .gitignore"
    assert reasons["local.md"] == "ignored by .gitignore"
    assert reasons[".hidden"] == "hidden"
    assert reasons[".dot.md"] == "hidden"
    assert ".DS_Store" not in reasons and ".HEARTBEAT.md.lock" not in reasons  # bookkeeping
    assert reasons["image.png"].startswith("unsupported type")


def test_walk_with_glob_only_keeps_matching(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.md": "x", "b.txt": "y", "d/c.md": "z"})
    found = sorted(i.rel for i in walk_source(tmp_path, ("*.md",)) if isinstance(i, Found))
    assert found == ["a.md", "d/c.md"]


async def test_workspace_created_and_indexed(service_factory, paths: Paths) -> None:  # type: ignore[no-untyped-def]
    memory = await service_factory()
    workspace = memory.workspace
    assert (workspace / "MEMORY.md").exists() and (workspace / "HEARTBEAT.md").exists()
    assert (workspace / "memory").is_dir()
    # The template's guidance is the daemon's, in a comment: not indexed, never cited.
    assert await memory.search("long-term notes") == []
    with (workspace / "MEMORY.md").open("a", encoding="utf-8") as fh:
        fh.write("My long-term notes: the bike's frame is 56 cm.\n")
    await memory.reindex()
    hits = await memory.search("long-term notes")
    assert hits and hits[0].file == "MEMORY.md"
    assert hits[0].line_end == len((workspace / "MEMORY.md").read_text().splitlines())
    stats = await memory.stats()
    assert stats.files.total == 2
    assert stats.files.memory_md.lines == len((workspace / "MEMORY.md").read_text().splitlines())
    assert stats.index.chunks >= 2 and stats.index.last_indexed


async def test_incremental_reindex_add_modify_delete(service_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    notes = tmp_path / "notes"
    _tree(
        notes,
        {
            "a.md": "# Alpha\n\nAardvarks eat ants.\n",
            "b.txt": "Bees make honey.\n",
            "c.pdf": make_pdf([["Cormorants dive deep"]]),
            "bin.md": b"binary\x00junk",
        },
    )
    memory = await service_factory()
    await memory.add_source(str(notes))
    report = await memory.reindex()
    assert (report.files_added, report.files_updated, report.files_removed) == (3, 0, 0)
    assert any(s.reason == "binary content" for s in report.skipped)
    assert (await memory.search("cormorants"))[0].file == "c.pdf"

    # Nothing changed: nothing re-read.
    again = await memory.reindex()
    assert (again.files_added, again.files_updated, again.chunks_added) == (0, 0, 0)
    assert again.files_unchanged == 5  # 3 notes + MEMORY.md + HEARTBEAT.md

    # Touched but same content: hash unchanged, not re-chunked.
    a = notes / "a.md"
    stamp = a.stat().st_mtime_ns + 5_000_000_000
    os.utime(a, ns=(stamp, stamp))
    touched = await memory.reindex()
    assert (touched.files_updated, touched.chunks_added) == (0, 0)
    chunk_ids = [h.chunk_id for h in await memory.search("aardvarks")]

    # Modified: re-chunked, old text gone.
    a.write_text("# Alpha\n\nArmadillos dig burrows.\n", encoding="utf-8")
    os.utime(a, ns=(stamp + 10**9, stamp + 10**9))
    modified = await memory.reindex()
    assert modified.files_updated == 1 and modified.chunks_added == 1
    assert await memory.search("aardvarks") == []
    new_hit = (await memory.search("armadillos"))[0]
    assert new_hit.chunk_id not in chunk_ids and new_hit.line_start == 1

    # Deleted: gone from the index.
    (notes / "b.txt").unlink()
    deleted = await memory.reindex()
    assert deleted.files_removed == 1 and deleted.chunks_removed == 1
    assert await memory.search("bees honey") == []

    # Force: every file re-chunked.
    forced = await memory.reindex(force=True)
    assert forced.files_updated == 4


async def test_sources_add_list_remove(service_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    extra = tmp_path / "extra"
    _tree(extra, {"x.md": "Xylophones are loud.\n"})
    configured = tmp_path / "configured"
    _tree(configured, {"y.md": "Yaks are hairy.\n"})
    memory = await service_factory(paths=[str(configured)])
    assert (await memory.search("yaks"))[0].file == "y.md"
    with pytest.raises(InvalidRequest):
        await memory.add_source(str(tmp_path / "missing"))
    (tmp_path / "pic.png").write_bytes(b"\x89PNG\x00")
    with pytest.raises(InvalidRequest, match="Not a file type memory indexes"):
        await memory.add_source(str(tmp_path / "pic.png"))
    await memory.add_source(str(extra), "*.md")
    with pytest.raises(Conflict):
        await memory.add_source(str(extra))
    origins = [(s.origin, s.path) for s in await memory.sources()]
    assert origins == [
        ("workspace", memory.workspace),
        ("config", configured.resolve()),
        ("user", extra.resolve()),
    ]
    await memory.reindex()
    assert (await memory.search("xylophones"))[0].file == "x.md"
    removed = await memory.remove_source(str(extra))
    assert removed.files_removed == 1
    assert await memory.search("xylophones") == []
    with pytest.raises(NotFound):
        await memory.remove_source(str(extra))
    with pytest.raises(Conflict):
        await memory.remove_source(str(configured))


async def test_watcher_picks_up_edits(service_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    memory = await service_factory(watch=True, watch_interval=0.1)
    log = memory.workspace / "memory" / "2026-02-14.md"
    log.write_text("# 2026-02-14\n\n## 10:00 Rust\n\nDiscussed async patterns in Rust.\n")
    for _ in range(100):
        hits = await memory.search("async rust")
        if hits:
            break
        await asyncio.sleep(0.05)
    assert hits and hits[0].file == "memory/2026-02-14.md"
    assert (hits[0].line_start, hits[0].line_end) == (1, 5)  # the date heading starts it
    assert hits[0].heading == "2026-02-14 > 10:00 Rust"


async def test_stop_during_a_pass_is_prompt_and_clean(
    config: Config, paths: Paths, tmp_path: Path
) -> None:
    folder = tmp_path / "big"
    _tree(folder, {f"d{i}.md": f"# D{i}\n\n" + "words here " * 200 for i in range(1500)})
    db = Database(paths.database)
    await asyncio.to_thread(db.open)
    memory = MemoryService(_memory_config(config, watch=False), paths, db)
    await memory.start()
    await memory.wait_ready()
    await memory.add_source(str(folder))
    pass_task = asyncio.ensure_future(memory.reindex())
    for _ in range(2000):
        if memory.indexing:
            break
        await asyncio.sleep(0.001)
    started = asyncio.get_running_loop().time()
    await memory.stop()
    assert asyncio.get_running_loop().time() - started < 2.0
    report = await pass_task  # the pass ended early, without an error
    assert report.files_added < 1500
    await asyncio.to_thread(db.close)


def test_big_pass_in_worker_processes_links_every_chunk_to_its_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The parallel path (this thread and a worker process share the files, batched writes)
    indexes every file with its own chunks, then updates and removes them incrementally."""
    from concurrent.futures import wait

    from localresearch.memory.indexer import PARALLEL_MIN_FILES, Indexer, SourceSpec

    folder = tmp_path / "notes"
    count = PARALLEL_MIN_FILES + 100
    for i in range(count):
        _tree(folder, {f"n{i:04d}.md": f"# Note {i}\n\nword{i} alpha\n\n## Part\n\nbeta{i}\n"})
    db = Database(tmp_path / "index.db")
    db.open()
    try:
        indexer = Indexer(db, workers=1)
        # Small notes chunk faster than they are written, so a pass would not start workers by
        # itself: start them up front, and every file goes through the worker process.
        indexer._start_pool()
        wait(indexer._warm)
        report = indexer.sync([SourceSpec(folder)])
        assert (report.files_added, report.chunks_added) == (count, 2 * count)
        assert indexer.prepared_here == 0
        (folder / "n0007.md").write_text("# Changed\n\ngamma\n", encoding="utf-8")
        (folder / "n0008.md").unlink()
        again = indexer.sync([SourceSpec(folder)])
        assert (again.files_updated, again.files_removed, again.chunks_added) == (1, 1, 1)

        def rows(conn: object) -> list[tuple[str, str, str]]:
            return conn.execute(  # type: ignore[attr-defined,no-any-return]
                "SELECT f.rel, t.heading, t.content FROM memory_chunks AS c"
                " JOIN memory_files AS f ON f.id = c.file_id"
                " JOIN memory_fts AS t ON t.rowid = c.id ORDER BY c.id"
            ).fetchall()

        found = db.read_sync(rows)
        assert len(found) == 2 * count - 3
        for rel, heading, content in found:
            number = int(rel[1:5])
            if number == 7:
                assert (heading, content) == ("Changed", "# Changed\n\ngamma")
            else:
                assert number != 8
                assert heading.startswith(f"Note {number}")
                assert f"{number}" in content
        assert indexer._pool is None  # the worker processes are gone after the pass
        assert "without worker processes" not in caplog.text
    finally:
        db.close()


def test_worker_processes_start_only_when_chunking_holds_the_writer_back(tmp_path: Path) -> None:
    """Spawning workers pays off for slow parsing (PDFs), not when the writer is the limit."""
    from localresearch.memory.indexer import PARALLEL_MIN_FILES, Indexer

    db = Database(tmp_path / "index.db")
    indexer = Indexer(db, workers=1)
    indexer._write_seconds = 1.0  # the writer: 1 ms per chunk over 1000 chunks
    big = PARALLEL_MIN_FILES
    assert indexer._needs_workers(big, busy=2.0, produced=1000, written=1000)  # 2 ms per chunk
    assert not indexer._needs_workers(big, busy=0.3, produced=1000, written=1000)
    assert not indexer._needs_workers(10, busy=0.2, produced=100, written=1000)  # a small pass
    assert indexer._needs_workers(10, busy=1.0, produced=100, written=1000)  # few, slow files
    assert not Indexer(db, workers=0)._needs_workers(big, busy=9.0, produced=10, written=10)


async def test_any_text_survives_the_batched_writes(service_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Quotes, backslashes, emoji and a stray NUL past the binary check go through the JSON
    batches intact (the NUL left out: SQLite's JSON text would end there)."""
    odd = 'Quokkas say "hi" \\ back\\slash, emoji 😀, café, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢'
    late_nul = "# Late\n\n" + "filler words here\n" * 600 + "Zebrafish\x00 regenerate fins.\n"
    _tree(tmp_path / "notes", {"odd.md": f"# Odd 😀\n\n{odd}\n", "late.md": late_nul})
    memory = await service_factory()
    await memory.add_source(str(tmp_path / "notes"))
    await memory.reindex()
    [hit] = await memory.search("quokkas", limit=1)
    assert hit.content == f"# Odd 😀\n\n{odd}" and hit.heading == "Odd 😀"
    [fish] = await memory.search("zebrafish regenerate", limit=1)
    assert "Zebrafish regenerate fins." in fish.content


def test_a_cancelled_walk_removes_nothing_it_did_not_see(tmp_path: Path) -> None:
    """Files are indexed as the walk finds them; only a walk that saw the whole tree may
    conclude that a file is gone."""
    from localresearch.memory.indexer import Indexer, SourceSpec

    folder = tmp_path / "notes"
    _tree(folder, {f"n{i}.md": f"# Note {i}\n\nword{i}\n" for i in range(20)})
    db = Database(tmp_path / "index.db")
    db.open()
    try:
        indexer = Indexer(db, workers=0)
        assert indexer.sync([SourceSpec(folder)]).files_added == 20
        (folder / "n3.md").unlink()
        (folder / "n4.md").write_text("# Changed\n\nnew words\n", encoding="utf-8")
        indexer.cancelled.set()
        stopped = indexer.sync([SourceSpec(folder)])
        assert (stopped.files_removed, stopped.files_updated) == (0, 0)
        indexer.cancelled.clear()
        done = indexer.sync([SourceSpec(folder)])
        assert (done.files_removed, done.files_updated, done.chunks_added) == (1, 1, 1)
    finally:
        db.close()


def test_a_pass_reports_growing_totals_and_writes_in_growing_batches(tmp_path: Path) -> None:
    """Progress totals count the files found so far and end at the full count; the first
    batch is small so that the writer starts at once."""
    from localresearch.memory import indexer as indexer_module
    from localresearch.memory.indexer import FIRST_BATCH_CHUNKS, Indexer, SourceSpec

    folder = tmp_path / "notes"
    count = 3 * FIRST_BATCH_CHUNKS
    _tree(folder, {f"n{i:04d}.md": f"word{i} alpha\n" for i in range(count)})
    db = Database(tmp_path / "index.db")
    db.open()
    try:
        indexer = Indexer(db, workers=0)
        sizes: list[int] = []
        submit = indexer._submit
        indexer._submit = lambda batch, known: (sizes.append(len(batch)), submit(batch, known))[1]  # type: ignore[method-assign]
        seen: list[tuple[int, int]] = []
        report = indexer.sync([SourceSpec(folder)], progress=lambda d, t, _: seen.append((d, t)))
        assert report.chunks_added == count
        assert all(done <= total for done, total in seen) and seen[-1] == (count, count)
        assert sizes == [FIRST_BATCH_CHUNKS, 2 * FIRST_BATCH_CHUNKS]
        assert indexer_module.BATCH_CHUNKS >= 2 * FIRST_BATCH_CHUNKS
    finally:
        db.close()


async def test_a_big_pass_leaves_one_merged_index_behind(service_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A pass writes many small FTS5 segments (one per batch); the service merges them in the
    background afterwards, so that searches probe one segment instead of dozens."""
    from localresearch.memory.service import COMPACT_MIN_CHUNKS

    folder = tmp_path / "notes"
    _tree(folder, {f"n{i:04d}.md": f"word{i} alpha\n" for i in range(COMPACT_MIN_CHUNKS + 200)})
    memory = await service_factory()

    def merges_left(conn: object) -> bool:
        before = conn.total_changes  # type: ignore[attr-defined]
        conn.execute("INSERT INTO memory_fts(memory_fts, rank) VALUES ('merge', -100000)")  # type: ignore[attr-defined]
        return conn.total_changes - before >= 2  # type: ignore[attr-defined,no-any-return]

    await memory.add_source(str(folder))
    memory._compact_soon = lambda: None  # first, the index as the pass leaves it
    await memory.reindex()
    assert await memory.db.write(merges_left)  # the probe merged it: start over
    await memory.remove_source(str(folder))
    del memory._compact_soon
    await memory.add_source(str(folder))
    report = await memory.reindex()
    assert report.chunks_added == COMPACT_MIN_CHUNKS + 200
    assert memory.compacting and memory._compaction is not None  # merging in the background
    await memory._compaction
    assert os.stat(f"{memory.db.path}-wal").st_size == 0  # copied back, nothing left over
    assert not await memory.db.write(merges_left)
    assert not (await memory.stats()).index.compacting
    assert [h.file for h in await memory.search("word7 alpha", limit=1)] == ["n0007.md"]


async def test_top_k_is_exact_bm25_over_every_query_term(
    service_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Candidates start from the rarer terms, but the result is exactly the top k of BM25 over
    the whole OR-query: pruned when the common terms cannot lift a chunk into the top k, widened
    when they can (a limit beyond the rare terms' chunks, a common term that is rare enough)."""
    rng = random.Random(7)
    common, rare = ["alpha", "beta", "gamma"], ["platypus", "quokka"]
    files = {}
    for i in range(400):  # the rare words are in 2.5% of the chunks, the common ones in most
        words = [rng.choice(common) for _ in range(rng.randint(0, 5))]
        if i % 40 == 0:
            words += [rng.choice(rare) for _ in range(rng.randint(1, 3))]
        if i % 9 == 0:
            words += ["wombat"]  # 11% of the chunks: not a candidate term, but it counts
        words += [f"filler{i}"] * rng.randint(1, 30)  # distinct lengths: no ties
        rng.shuffle(words)
        files[f"n{i:03d}.md"] = " ".join(words) + "\n"
    _tree(tmp_path / "notes", files)
    memory = await service_factory(length_prior=0.0)  # plain BM25, to compare exactly
    await memory.add_source(str(tmp_path / "notes"))
    await memory.reindex()

    async def reference(words: list[str]) -> list[tuple[int, float]]:
        def read(conn: object) -> list[tuple[int, float]]:
            sql = (
                "SELECT rowid, bm25(memory_fts, 1.0, 1.0, 1.0) AS s FROM memory_fts"
                " WHERE memory_fts MATCH ? ORDER BY s"
            )
            return [(r[0], -r[1]) for r in conn.execute(sql, (" OR ".join(words),))]  # type: ignore[attr-defined]

        return await memory.db.read(read)

    stats = memory._tables["memory_fts"]
    monkeypatch.setattr(ranking, "SCORE_ALL_ROWS", 0)  # plan even this small index's queries
    for query, limit, widened in (
        (common + rare, 5, False),  # the common terms' bounds are below the 5th score
        (common + rare, 100, True),  # only 10 chunks hold a rare term: every term is needed
        (["alpha", "platypus", "wombat"], 10, True),  # wombat can lift a chunk into the top 10
    ):
        rounds = stats.rounds
        expected = (await reference(query))[:limit]
        hits = await memory.search(" ".join(query), limit=limit)
        assert [h.chunk_id for h in hits] == [cid for cid, _ in expected]
        assert [h.score for h in hits] == pytest.approx([score for _, score in expected])
        assert (stats.rounds > rounds) == widened
    with_common = [h for h in hits if "wombat" in h.content.split()]
    assert 0 < len(with_common) < len(hits)


async def test_every_term_below_the_idf_floor_counts_past_the_old_budget(
    service_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A claim's common words (each in ~45% of the chunks: 24,000 postings together, past the
    10,000 postings matched until 2026-12-02) all count towards the top k; words in at least
    half the chunks, which FTS5's idf floors, are left out of the scoring yet still find the
    chunks holding nothing else."""
    rng = random.Random(5)
    common = [f"word{n}" for n in range(18)]
    sections = []
    for i in range(3000):
        words = ["the"] * (i % 2 == 0 or i % 3 == 0)  # "the": in 2 of 3 chunks, floored
        words += [w for w in common if rng.random() < 0.45]
        if i % 250 < 3:  # 36 chunks hold both rare words
            words += ["platypus", "quokka"]
        elif i == 7:
            words = ["the", "otter"]
        words += [f"filler{i}"] * rng.randint(1, 12)
        rng.shuffle(words)
        sections.append(f"## s{i}\n\n{' '.join(words)}\n")
    _tree(tmp_path / "notes", {"big.md": "\n".join(sections)})
    memory = await service_factory(length_prior=0.0)
    await memory.add_source(str(tmp_path / "notes"))
    await memory.reindex()
    query = ["platypus", "quokka", *common, "the"]

    def reference(conn: object) -> list[tuple[int, float]]:
        sql = (
            "SELECT rowid, bm25(memory_fts, 1.0, 1.0, 1.0) AS s FROM memory_fts"
            " WHERE memory_fts MATCH ? ORDER BY s LIMIT 10"
        )
        return [(r[0], -r[1]) for r in conn.execute(sql, (" OR ".join(query),))]  # type: ignore[attr-defined]

    expected = await memory.db.read(reference)
    stats = memory._tables["memory_fts"]
    hits = await memory.search(" ".join(query), limit=10)
    assert stats.inexact == 0
    assert [h.chunk_id for h in hits] == [cid for cid, _ in expected]
    # The floored word adds at most 2.2e-6 to a score: left out, it moves none past that.
    assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-5)
    df, total = stats.df, stats.rows(None)  # type: ignore[arg-type]  # cached by the search
    assert 10_000 < sum(df[f'"{w}"'] for w in common) < ranking.MAX_MATCH_ROWS
    assert all(2 * df[f'"{w}"'] < total for w in common) and 2 * df['"the"'] >= total
    # Only 1 chunk holds "otter": the rest of the 5 best hold only the floored "the" (its
    # 2,000 postings within the widening bound here).
    monkeypatch.setattr(ranking, "WIDEN_ROWS", 5000)
    rounds = stats.rounds
    found = await memory.search("otter the", limit=5)
    assert stats.rounds == rounds + 1
    assert len(found) == 5 and "otter" in found[0].content.split()
    assert all("the" in h.content.split() for h in found[1:])


async def test_a_small_index_is_ranked_whole_whatever_its_common_words(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Every query word counts, common ones too: their postings can pass the widening bound,
    but an index of at most SCORE_ALL_ROWS chunks is scored whole, so its top k stays exact."""
    rng = random.Random(11)
    files = {}
    for i in range(300):  # "the", "and", "of" in nearly every chunk: 900 postings together
        words = ["the", "and", "of"] + [f"filler{i}"] * rng.randint(1, 20)
        if i % 30 == 0:
            words += ["platypus"]
        rng.shuffle(words)
        files[f"n{i:03d}.md"] = " ".join(words) + "\n"
    _tree(tmp_path / "notes", files)
    memory = await service_factory(length_prior=0.0)
    await memory.add_source(str(tmp_path / "notes"))
    await memory.reindex()

    def reference(conn: object) -> list[int]:
        sql = (
            "SELECT rowid FROM memory_fts WHERE memory_fts MATCH ?"
            " ORDER BY bm25(memory_fts, 1.0, 1.0, 1.0) LIMIT 50"
        )
        query = '"the" OR "platypus" OR "and" OR "of"'
        return [r[0] for r in conn.execute(sql, (query,))]  # type: ignore[attr-defined]

    expected = await memory.db.read(reference)
    stats = memory._tables["memory_fts"]
    hits = await memory.search("the platypus and of", limit=50)
    assert [h.chunk_id for h in hits] == expected
    assert stats.inexact == 0 and stats.rounds == 0
    assert {h.file for h in hits[:10]} >= {f"n{i:03d}.md" for i in range(0, 300, 30)}


async def test_quick_searches_run_on_the_loop_slow_ones_on_reader_threads(service_factory) -> None:  # type: ignore[no-untyped-def]
    """A thread hand-off costs more than a quick search; a slow one must not hold the loop."""
    from localresearch.memory.service import INLINE_SEARCH_S

    memory = await service_factory()
    threads: list[str] = []
    read_sync = memory.db.read_sync

    def recording(fn):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return read_sync(fn)

    memory.db.read_sync = recording
    assert memory._search_seconds == float("inf")  # nothing measured yet: a reader thread
    await memory.search("memory")
    assert threads[-1].startswith("sqlite-reader")
    measured = memory._search_seconds
    assert 0 < measured < 1  # its SQL time was measured
    memory._search_seconds = INLINE_SEARCH_S / 2  # recent searches were quick (kept steady here)
    await memory.search("memory")
    assert threads[-1] == threading.current_thread().name  # on the event loop's thread
    assert memory._search_seconds != INLINE_SEARCH_S / 2  # and measured there too
    memory._search_seconds = 10 * INLINE_SEARCH_S  # as after slow searches (a big, cold index)
    hits = await memory.search("memory")
    assert threads[-1].startswith("sqlite-reader") and hits
