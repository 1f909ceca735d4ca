"""The onnx embeddings provider: a tiny ONNX model made here, run by the real daemon's worker."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")
np = pytest.importorskip("numpy")

from localresearch.config import Config  # noqa: E402
from localresearch.config.loader import ConfigError  # noqa: E402
from localresearch.config.schema import EmbeddingsConfig  # noqa: E402
from localresearch.memory import vectors  # noqa: E402
from localresearch.memory.embeddings import make_embedder  # noqa: E402
from localresearch.memory.onnx_embedder import (  # noqa: E402
    MANIFEST,
    make_onnx_embedder,
)
from localresearch.memory.service import MemoryService  # noqa: E402
from localresearch.paths import Paths  # noqa: E402
from localresearch.server.keys import RUNTIME  # noqa: E402
from localresearch.store import Database  # noqa: E402
from tests.onnx_model import (  # noqa: E402
    HIDDEN,
    expected,
    sentence_transformers_config,
    write_model,
)

TEXTS = [
    "The car needs new tyres before winter.",
    "garden",
    "Automobile insurance renewal is due in March, before the garden and the tulip bulbs.",
    "plant tulip bulbs in october",
]
NOTES = {
    "garage.md": "# Garage\n\nThe car needs new tyres before winter.\n",
    "insurance.md": "# Insurance\n\nAutomobile insurance renewal is due in March.\n",
    "garden.md": "# Garden\n\nPlant tulip bulbs in October.\n",
}


@pytest.mark.parametrize(("pooling", "normalize"), [("cls", True), ("mean", True), ("mean", False)])
def test_pooling_and_normalisation_come_from_the_sentence_transformers_config(
    tmp_path: Path, pooling: str, normalize: bool
) -> None:
    folder = write_model(tmp_path / "model")
    sentence_transformers_config(folder, pooling, normalize)
    embedder = make_onnx_embedder(str(folder), threads=1, batch_size=2)
    assert embedder.name == "onnx/model"
    assert embedder.layout.max_tokens == 64  # sentence_bert_config.json
    got = embedder.embed(TEXTS)  # lengths differ: batches are sorted, results are not
    for text, vector in zip(TEXTS, got, strict=True):
        assert np.allclose(vector, expected(text, pooling, normalize), atol=1e-5), text
        # One text alone (a search's query) takes the short path: the same vector.
        [alone] = embedder.embed([text])
        assert np.allclose(alone, vector, atol=1e-5), text
        assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-5) is normalize


def test_manifest_wins_and_int32_inputs_are_fed(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m32", int32_inputs=True)
    sentence_transformers_config(folder, "cls", False)  # the manifest overrides it
    manifest = {"name": "tiny", "pooling": "mean", "normalize": True, "max_tokens": 3}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    embedder = make_embedder(EmbeddingsConfig(provider="onnx", model=str(folder), threads=1))
    assert embedder is not None and embedder.name == "onnx/tiny"
    [vector] = embedder.embed(["garden tulip bulbs october"])
    # max_tokens 3: "garden tulip [SEP]" is what the model sees.
    assert np.allclose(vector, expected("garden tulip", "mean", True), atol=1e-5)


def test_folders_that_do_not_say_how_to_pool_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="embeddings install bge-small"):
        make_embedder(EmbeddingsConfig(provider="onnx"))
    with pytest.raises(ConfigError, match="is not one"):
        make_embedder(EmbeddingsConfig(provider="onnx", model=str(tmp_path / "nowhere")))
    folder = write_model(tmp_path / "bare")
    with pytest.raises(ConfigError, match="does not say how to pool") as caught:
        make_embedder(EmbeddingsConfig(provider="onnx", model=str(folder)))
    assert caught.value.key == "memory.embeddings.model"
    sentence_transformers_config(folder, "cls", True)
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_cls_token=False, pooling_mode_max_tokens=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    with pytest.raises(ConfigError, match="pooling_mode_max_tokens"):
        make_embedder(EmbeddingsConfig(provider="onnx", model=str(folder)))
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ConfigError, match=r"has no tokenizer\.json"):
        make_embedder(EmbeddingsConfig(provider="onnx", model=str(folder)))


def test_vectors_are_stored_as_float16_and_old_float32_rows_still_score(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(50, 16)).astype(np.float32)
    blobs = [vectors.pack(row.tolist()) for row in rows]
    assert {len(b) for b in blobs} == {32}  # 2 bytes a dimension
    blobs[7] = (rows[7] / np.linalg.norm(rows[7])).astype("<f4").tobytes()  # an older row
    ids = list(range(100, 150))
    matrix_file = tmp_path / "vectors" / "m.f32"
    index = vectors.VectorIndex(ids, blobs, 16, matrix_file)
    assert isinstance(index._matrix, np.memmap) and matrix_file.stat().st_size == 50 * 16 * 4
    query = rows[7] + 0.01 * rng.normal(size=16).astype(np.float32)
    exact = (rows / np.linalg.norm(rows, axis=1, keepdims=True)) @ (query / np.linalg.norm(query))
    top = index.top(query.tolist(), 5)
    assert top[0][0] == 107
    for chunk_id, score in top:
        assert math.isclose(score, float(exact[chunk_id - 100]), abs_tol=2e-3)
    # Re-scoring given candidates (the path for indexes too big to scan) agrees with the scan.
    candidates = [chunk_id for chunk_id, _ in top] + [999]  # 999 has no vector
    # (same ids in the same order; the float32 sums may differ in the last bit: BLAS blocks a
    # 50-row product differently from a 5-row one)
    rescored = index.score(query.tolist(), candidates[::-1])
    assert [chunk_id for chunk_id, _ in rescored] == [chunk_id for chunk_id, _ in top]
    for (_, got), (_, want) in zip(rescored, top, strict=True):
        assert math.isclose(got, want, abs_tol=1e-6)
    assert index.score(query.tolist(), []) == []
    assert vectors.VectorIndex([], [], 0).top(query.tolist(), 3) == []


def _config(config: Config, folder: Path, **extra: Any) -> Config:
    settings = EmbeddingsConfig(
        provider="onnx", model=str(folder), threads=1, batch_size=2,
        vector_weight=0.5, similarity_floor=0.0, **extra,
    )  # fmt: skip
    memory = dataclasses.replace(config.memory, watch=False, embeddings=settings)
    return dataclasses.replace(config, memory=memory)


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = write_model(tmp_path / "tiny-model")
    sentence_transformers_config(folder, "mean", True)
    return folder


async def _files(client: Any, q: str) -> list[str]:
    response = await client.get("/api/memory/search", params={"q": q, "limit": "10"})
    assert response.status == 200
    return [hit["file"] for hit in (await response.json())["results"]]


class Gate:
    """Wraps an embedder so a test decides when each embed call may proceed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.open = threading.Event()
        self.calls = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        assert self.open.wait(30)
        result: list[list[float]] = self.inner.embed(texts)
        return result


async def test_daemon_embeds_in_the_background_and_bm25_never_waits(
    make_client: Any, config: Config, model_folder: Path
) -> None:
    client = await make_client(_config(config, model_folder))
    memory = client.app[RUNTIME].memory
    await memory.wait_ready()
    await memory.wait_vectors()
    worker = memory.vector_worker
    gate = Gate(worker.embedder)
    worker.embedder = gate
    for name, text in NOTES.items():
        (memory.workspace / name).write_text(text, encoding="utf-8")
    # The pass returns with the vectors still to come: BM25 already finds the new notes.
    report = await asyncio.wait_for(memory.reindex(wait_vectors=False), 30)
    assert report.files_added == 3
    assert "garden.md" in await _files(client, "tulip")  # it has no vector yet
    stats = (await (await client.get("/api/memory/stats")).json())["embeddings"]
    assert stats["progress"]["running"] is True and stats["progress"]["done"] == 0
    assert stats["progress"]["total"] == 3
    gate.open.set()
    await asyncio.wait_for(memory.wait_vectors(), 30)
    stats = (await (await client.get("/api/memory/stats")).json())["embeddings"]
    notes = (await memory.chunks_by_kind())["note"]  # the daemon's own text is never embedded
    assert stats["model"] == "onnx/tiny-model" and stats["vectors"] == notes
    assert stats["progress"]["done"] == stats["progress"]["total"] == 3
    assert stats["progress"]["running"] is False and stats["progress"]["rate_per_s"] > 0
    blobs = await memory.db.read(
        lambda conn: conn.execute("SELECT dim, length(vector) FROM memory_vectors").fetchall()
    )
    assert {tuple(row) for row in blobs} == {(HIDDEN, 2 * HIDDEN)}  # float16
    # The model folds "vehicle" into "car": fusion adds both car notes to BM25's nothing.
    assert set(await _files(client, "vehicle")) >= {"garage.md", "insurance.md"}
    assert (await _files(client, "vehicle tyres"))[0] == "garage.md"


async def test_reindex_stream_reports_vector_progress(
    make_client: Any, config: Config, model_folder: Path
) -> None:
    client = await make_client(_config(config, model_folder))
    memory = client.app[RUNTIME].memory
    await memory.wait_ready()
    await memory.wait_vectors()
    for i in range(12):
        (memory.workspace / f"n{i}.md").write_text(f"# Note {i}\n\nThe car in garden {i}.\n")
    response = await client.post(
        "/api/memory/reindex", json={}, headers={"Accept": "text/event-stream"}
    )
    events = [
        json.loads(line[6:])
        for line in (await response.text()).splitlines()
        if line.startswith("data: ")
    ]
    types = [e["type"] for e in events]
    assert types[0] == "start" and types[-1] == "done" and "vectors" in types
    assert types.index("vectors") > max(i for i, t in enumerate(types) if t == "progress")
    last = [e for e in events if e["type"] == "vectors"][-1]["data"]
    assert last["done"] == last["total"] == 12 and last["running"] is False
    assert set(last) == {"done", "total", "rate_per_s", "eta_s", "running"}
    assert (
        memory.vector_worker.idle
        and (await memory.embedding_stats()).vectors == (await memory.chunks_by_kind())["note"]
    )


async def test_chunks_left_without_vectors_are_picked_up_after_a_restart(
    config: Config, paths: Paths, model_folder: Path
) -> None:
    for name, text in NOTES.items():
        (paths.default_workspace).mkdir(parents=True, exist_ok=True)
        (paths.default_workspace / name).write_text(text, encoding="utf-8")
    cfg = _config(config, model_folder)
    # First life: BM25 only (no provider), as after a crash before any vector was made.
    plain = dataclasses.replace(cfg.memory, embeddings=EmbeddingsConfig())
    db = Database(paths.database)
    await asyncio.to_thread(db.open)
    service = MemoryService(dataclasses.replace(cfg, memory=plain), paths, db)
    await service.start()
    await service.wait_ready()
    await service.stop()
    chunks = (await service.chunks_by_kind())["note"]
    assert chunks >= 3
    # Second life, with the onnx provider: one vector gets made, then the daemon stops.
    service = MemoryService(cfg, paths, db)
    await service.start()
    await service.wait_ready()
    await service.wait_vectors()
    assert (await service.embedding_stats()).vectors == chunks
    await db.write(
        lambda conn: conn.execute(
            "DELETE FROM memory_vectors WHERE chunk_id IN"
            " (SELECT chunk_id FROM memory_vectors ORDER BY chunk_id LIMIT 2)"
        )
    )
    await service.stop()
    # Third life: only the two missing vectors are made, without any reindex.
    service = MemoryService(cfg, paths, db)
    await service.start()
    await asyncio.wait_for(service.wait_vectors(), 30)
    stats = await service.embedding_stats()
    assert stats is not None and stats.vectors == chunks
    assert stats.progress is not None and stats.progress.done == stats.progress.total == 2
    await service.stop()
    await asyncio.to_thread(db.close)


async def test_fused_results_read_only_the_rows_they_return(
    make_client: Any, config: Config, model_folder: Path
) -> None:
    client = await make_client(_config(config, model_folder))
    memory = client.app[RUNTIME].memory
    await memory.wait_ready()
    words = ["garden tulip bulbs", "insurance renewal march", "winter tyres", "garage"]
    for i in range(24):  # "car" notes are found for "vehicle" by their vectors alone
        text = f"The car {words[i % 4]} {i}." if i % 3 else f"A vehicle is due {i}."
        (memory.workspace / f"n{i}.md").write_text(f"# Note {i}\n\n{text}\n")
    await memory.reindex()
    query = "vehicle tyres"
    full = await memory.search(query, 100)
    lexical = {hit.chunk_id for hit in await _bm25_only(memory, query)}
    first = next(i for i, hit in enumerate(full) if hit.chunk_id not in lexical)
    assert first < len(full) - 3  # vector-only hits: "car" notes, found for "vehicle"
    reads: list[list[int]] = []
    read_chunks = memory._read_chunks

    async def recording(chunk_ids: list[int], wanted: frozenset[str]) -> Any:
        reads.append(list(chunk_ids))
        return await read_chunks(chunk_ids, wanted)

    memory._read_chunks = recording
    for limit in (1, 2, first, first + 1, first + 3, 100):
        reads.clear()
        got = await memory.search(query, limit)
        assert [(h.chunk_id, h.score, h.content) for h in got] == [
            (h.chunk_id, h.score, h.content) for h in full[:limit]
        ]
        assert sum(len(ids) for ids in reads) <= limit  # only rows of hits returned
        assert bool(reads) is (limit > first)
    # A chunk gone between scoring and reading (deleted meanwhile): the next ones fill in.
    gone = next(h.chunk_id for h in full if h.chunk_id not in lexical)

    async def without_gone(chunk_ids: list[int], wanted: frozenset[str]) -> Any:
        return [row for row in await read_chunks(chunk_ids, wanted) if row["id"] != gone]

    memory._read_chunks = without_gone
    got = await memory.search(query, first + 3)
    rest = [h.chunk_id for h in full if h.chunk_id != gone]
    assert [h.chunk_id for h in got] == rest[: first + 3]


async def _bm25_only(memory: MemoryService, query: str) -> list[Any]:
    embedder, memory.embedder = memory.embedder, None
    try:
        return await memory.search(query, 100)
    finally:
        memory.embedder = embedder


def test_candidates_are_found_whatever_the_order_of_ids_and_candidates() -> None:
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(6, 8)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    ids = [40, 10, 60, 20, 50, 30]  # not sorted: rows are found by id, not by position
    index = vectors.VectorIndex(ids, [vectors.pack(r.tolist()) for r in rows], 8)
    query = rows[2] + 0.6 * rows[4]  # ids 60, then 50
    want = sorted(
        (
            (cid, float(rows[ids.index(cid)] @ query / np.linalg.norm(query)))
            for cid in (60, 10, 50)
        ),
        key=lambda item: -item[1],
    )
    got = index.score(query.tolist(), [10, 999, 50, 60, 5])  # 999 and 5 have no vector
    assert [cid for cid, _ in got] == [cid for cid, score in want if score > 0]
    # Sparse ids (found by binary search, not a table indexed by id) give the same answer.
    sparse = [cid * 10**9 for cid in ids]
    index = vectors.VectorIndex(sparse, [vectors.pack(r.tolist()) for r in rows], 8)
    again = index.score(query.tolist(), [10**10, 999, 5 * 10**10, 6 * 10**10, 5])
    assert again == [(cid * 10**9, score) for cid, score in got]
    assert {cid for cid, _ in got[:2]} == {50, 60}
    for (_, score), (_, wanted) in zip(got, want, strict=False):
        assert math.isclose(score, wanted, abs_tol=2e-3)


class _Recording:
    """The real session, with the shape of every input it was fed."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.shapes: list[tuple[int, ...]] = []

    def run(self, names: Any, feed: dict[str, Any]) -> Any:
        self.shapes.append(tuple(feed["input_ids"].shape))
        return self.session.run(names, feed)


def test_each_batch_is_padded_to_its_longest_text_not_to_the_model_limit(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "model")
    (folder / MANIFEST).write_text(json.dumps({"pooling": "mean", "max_tokens": 64}))
    embedder = make_onnx_embedder(str(folder), threads=1, batch_size=2)
    embedder.embed(["car"])  # loads the session
    recording = _Recording(embedder._session)
    embedder._session = recording
    got = embedder.embed(TEXTS)
    widths = sorted(len(embedder._tokenizer.encode(text).ids) for text in TEXTS)
    assert recording.shapes == [(2, widths[1]), (2, widths[3])]
    assert widths[3] < 64
    for text, vector in zip(TEXTS, got, strict=True):
        assert np.allclose(vector, expected(text, "mean", True), atol=1e-5), text


class _Threads(_Recording):
    """The real session, with the name of the thread each batch ran on."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.threads: list[str] = []

    def run(self, names: Any, feed: dict[str, Any]) -> Any:
        self.threads.append(threading.current_thread().name)
        return super().run(names, feed)


def test_batches_run_on_the_workers_and_keep_their_order(tmp_path: Path) -> None:
    """Several batches at once, each on a worker thread; every vector lands at its own text."""
    folder = write_model(tmp_path / "model")
    (folder / MANIFEST).write_text(json.dumps({"pooling": "mean", "max_tokens": 64}))
    embedder = make_onnx_embedder(str(folder), threads=3, batch_size=1)
    assert embedder.workers == 3
    texts = [f"{text} {'word ' * n}" for n in range(4) for text in TEXTS]
    embedder.embed(["car"])  # loads the session; a query runs on the caller's thread
    recording = _Threads(embedder._session)
    embedder._session = recording
    got = embedder.embed(texts)
    assert len(recording.threads) == len(texts)  # one text per batch
    assert all(name.startswith("onnx-embed") for name in recording.threads)
    for text, vector in zip(texts, got, strict=True):
        assert np.allclose(vector, expected(text, "mean", True), atol=1e-5), text
    [alone] = embedder.embed([texts[5]])
    assert recording.threads[-1] == threading.current_thread().name
    assert np.allclose(alone, got[5], atol=1e-5)


@pytest.mark.parametrize(("given", "kept"), [(None, "1"), ("3", "3")])
def test_numpy_is_imported_with_one_blas_thread_unless_the_user_says(
    given: str | None, kept: str
) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    code = (
        "import os, sys; from localresearch.memory import vectors;"
        " assert 'numpy' not in sys.modules; vectors._numpy();"
        " print(os.environ['OPENBLAS_NUM_THREADS'])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == kept
