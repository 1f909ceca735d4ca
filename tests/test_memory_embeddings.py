"""Semantic search against local servers speaking the Ollama and OpenAI embeddings wire formats."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from typing import Any

import pytest
from aiohttp import web

from localresearch.config import Config
from localresearch.config.loader import ConfigError, set_value
from localresearch.config.schema import EmbeddingsConfig
from localresearch.memory import embeddings, vectors
from localresearch.memory.embed_http import HTTPEmbedder
from localresearch.memory.embeddings import VectorIndex, combine, fuse, make_embedder, pack
from localresearch.memory.service import MemoryService
from localresearch.paths import Paths
from localresearch.server.keys import RUNTIME
from localresearch.store import Database

DIM = 1024
# The fake model "understands" these synonyms: BM25 cannot, so fusion changes the ranking.
SYNONYMS = {"automobile": "car", "automobiles": "car", "cars": "car", "vehicle": "car"}


def fake_vector(text: str) -> list[float]:
    """A deterministic hashed bag of words (with synonyms folded together)."""
    vector = [0.0] * DIM
    for word in re.findall(r"\w+", text.lower()):
        word = SYNONYMS.get(word, word)
        bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
        vector[bucket % DIM] += 1.0
    return vector


class FakeEmbeddings:
    """Speaks both wire formats; records every request; can be told to fail."""

    def __init__(self) -> None:
        self.requests: list[list[str]] = []
        self.fail = False

    def _inputs(self, body: Any) -> list[str]:
        assert isinstance(body, dict) and body["model"] == "fake-embed"
        assert isinstance(body["input"], list) and all(isinstance(t, str) for t in body["input"])
        self.requests.append(body["input"])
        return list(body["input"])

    async def ollama(self, request: web.Request) -> web.Response:
        inputs = self._inputs(await request.json())
        if self.fail:
            return web.json_response({"error": "model 'fake-embed' crashed"}, status=500)
        if "malformed" in inputs:
            return web.json_response({"embeddings": [["not", "numbers"]]})
        return web.json_response(
            {"model": "fake-embed", "embeddings": [fake_vector(t) for t in inputs]}
        )

    async def openai(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer sk-test":
            error = {"message": "Incorrect API key provided", "type": "invalid_request_error"}
            return web.json_response({"error": error}, status=401)
        inputs = self._inputs(await request.json())
        if self.fail:
            error = {"message": "The server is overloaded", "type": "server_error"}
            return web.json_response({"error": error}, status=503)
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(t)}
            for i, t in enumerate(inputs)
        ]
        data.reverse()  # the order of `data` is not guaranteed: `index` says which is which
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return web.json_response(
            {"object": "list", "data": data, "model": "fake-embed", "usage": usage}
        )


@pytest.fixture
async def fake(aiohttp_server: Any) -> tuple[FakeEmbeddings, str]:
    service = FakeEmbeddings()
    app = web.Application()
    app.router.add_post("/api/embed", service.ollama)
    app.router.add_post("/v1/embeddings", service.openai)
    server = await aiohttp_server(app)
    return service, str(server.make_url("")).rstrip("/")


def _config(config: Config, **embedding: Any) -> Config:
    settings = EmbeddingsConfig(model="fake-embed", **embedding)
    memory = dataclasses.replace(config.memory, watch=False, embeddings=settings)
    return dataclasses.replace(config, memory=memory)


NOTES = {
    "garage.md": "# Garage\n\nThe car needs new tyres before winter.\n",
    "insurance.md": "# Insurance\n\nAutomobile insurance renewal is due in March.\n",
    "garden.md": "# Garden\n\nPlant tulip bulbs in October.\n",
}


async def _start(make_client: Any, cfg: Config) -> tuple[Any, Any]:
    client = await make_client(cfg)
    memory = client.app[RUNTIME].memory
    await memory.wait_ready()
    await memory.wait_vectors()  # the start-up pass is over: the next pass is the notes' alone
    for name, text in NOTES.items():
        (memory.workspace / name).write_text(text, encoding="utf-8")
    return client, memory


async def _files(client: Any, q: str) -> list[str]:
    response = await client.get("/api/memory/search", params={"q": q, "limit": "10"})
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"query", "results", "total"}
    return [hit["file"] for hit in body["results"]]


async def test_ollama_vectors_fused_with_bm25_incrementally(
    make_client: Any, config: Config, fake: tuple[FakeEmbeddings, str]
) -> None:
    server, url = fake
    cfg = _config(config, provider="ollama", base_url=url, batch_size=2)
    client, memory = await _start(make_client, cfg)
    bm25_only = await _files(client, "automobile")
    assert bm25_only == []  # the index is not current yet: nothing has the word
    report = await memory.reindex()
    assert report.files_added == 3
    assert all(0 < len(batch) <= 2 for batch in server.requests)  # batched, batch_size 2
    stats = (await (await client.get("/api/memory/stats")).json())["embeddings"]
    progress = stats.pop("progress")
    notes = (await memory.chunks_by_kind())["note"]
    assert stats == {"model": "ollama/fake-embed", "vectors": notes, "error": None}
    # The last background pass embedded the three new notes' chunks and is over.
    assert progress["done"] == progress["total"] == 3 and progress["running"] is False
    assert progress["rate_per_s"] > 0 and progress["eta_s"] == 0
    # BM25 alone finds only the word; the vectors add the synonym's note, and rank fusion puts
    # the note matching both ways first.
    assert await _files(client, "automobile") == ["insurance.md", "garage.md"]
    assert await _files(client, "tulip") == ["garden.md"]
    hits = await memory.search("automobile", 5)
    assert hits[0].score > hits[1].score > 0
    assert (hits[1].line_start, hits[1].line_end) == (1, 3)
    # Only new or changed chunks are embedded again.
    server.requests.clear()
    (memory.workspace / "garden.md").write_text("# Garden\n\nA vehicle path.\n", encoding="utf-8")
    await memory.reindex()
    embedded = [text for batch in server.requests for text in batch]
    assert [t for t in embedded if "Garden" in t] == ["Garden\n# Garden\n\nA vehicle path."]
    assert len(embedded) == 1
    assert await _files(client, "automobile") == ["insurance.md", "garden.md", "garage.md"]


async def test_openai_wire_format_with_key_from_env(
    make_client: Any,
    config: Config,
    fake: tuple[FakeEmbeddings, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _server, url = fake
    monkeypatch.setenv("TEST_EMBED_KEY", "sk-test")
    cfg = _config(config, provider="openai", base_url=f"{url}/v1", api_key_env="TEST_EMBED_KEY")
    client, memory = await _start(make_client, cfg)
    await memory.reindex()
    # Vectors are stored by `index`, not by the order of `data`.
    rows = await memory.db.read(
        lambda conn: conn.execute(
            "SELECT t.heading, t.content, v.vector, v.model FROM memory_vectors AS v"
            " JOIN memory_fts AS t ON t.rowid = v.chunk_id"
        ).fetchall()
    )
    assert len(rows) == (await memory.chunks_by_kind())["note"] >= 4
    for heading, content, blob, model in rows:
        assert model == "openai/fake-embed"
        text = f"{heading}\n{content}" if heading else content
        assert blob == pack(fake_vector(text))
    assert await _files(client, "automobile") == ["insurance.md", "garage.md"]


async def test_provider_errors_never_break_bm25_and_are_retried(
    make_client: Any, config: Config, fake: tuple[FakeEmbeddings, str]
) -> None:
    server, url = fake
    server.fail = True
    cfg = _config(config, provider="ollama", base_url=url)
    client, memory = await _start(make_client, cfg)
    report = await memory.reindex()
    assert report.files_added == 3
    stats = await memory.embedding_stats()
    assert stats is not None and stats.vectors == 0
    assert stats.error == "embeddings endpoint answered 500: model 'fake-embed' crashed"
    # Search still answers from BM25 (the query embedding fails too).
    assert await _files(client, "automobile") == ["insurance.md"]
    server.fail = False
    await memory.reindex()  # an explicit reindex retries at once
    stats = await memory.embedding_stats()
    assert stats is not None
    assert stats.error is None and stats.vectors == (await memory.chunks_by_kind())["note"]
    assert await _files(client, "automobile") == ["insurance.md", "garage.md"]


async def test_wrong_key_is_a_clear_provider_error(
    config: Config, fake: tuple[FakeEmbeddings, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from localresearch.errors import ProviderError

    _, url = fake
    monkeypatch.setenv("TEST_EMBED_KEY", "sk-wrong")
    cfg = _config(config, provider="openai", base_url=f"{url}/v1", api_key_env="TEST_EMBED_KEY")
    embedder = make_embedder(cfg.memory.embeddings)
    assert isinstance(embedder, HTTPEmbedder)
    try:
        with pytest.raises(ProviderError, match="401: Incorrect API key provided"):
            await asyncio.to_thread(embedder.embed, ["x"])
    finally:
        await asyncio.to_thread(embedder.close)


async def test_malformed_answer_is_a_provider_error(
    config: Config, fake: tuple[FakeEmbeddings, str]
) -> None:
    import asyncio

    from localresearch.errors import ProviderError

    _, url = fake
    embedder = make_embedder(_config(config, provider="ollama", base_url=url).memory.embeddings)
    assert isinstance(embedder, HTTPEmbedder)
    try:
        with pytest.raises(ProviderError, match="malformed vector"):
            await asyncio.to_thread(embedder.embed, ["malformed"])
        with pytest.raises(ProviderError, match="returned 1 of 2 vectors"):
            await asyncio.to_thread(embedder.embed, ["malformed", "x"])
    finally:
        await asyncio.to_thread(embedder.close)


def test_configuration_errors_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_embedder(EmbeddingsConfig()) is None
    with pytest.raises(ConfigError, match="unknown provider 'cohere'"):
        make_embedder(EmbeddingsConfig(provider="cohere", model="m"))
    with pytest.raises(ConfigError, match="needs a model"):
        make_embedder(EmbeddingsConfig(provider="ollama"))
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR"):
        make_embedder(EmbeddingsConfig(provider="openai", model="m", api_key_env="NO_SUCH_KEY_VAR"))
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"localresearch\[embeddings-local\]"):
            make_embedder(EmbeddingsConfig(provider="local"))


async def test_local_provider_without_its_package_stops_the_start(
    config: Config, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = embeddings.importlib.import_module

    def missing(name: str) -> Any:
        if name == "sentence_transformers":
            raise ImportError("No module named 'sentence_transformers'")
        return real(name)

    monkeypatch.setattr(embeddings.importlib, "import_module", missing)
    service = MemoryService(_config(config, provider="local"), paths, Database(paths.database))
    with pytest.raises(ConfigError, match="embeddings-local") as caught:
        await service.start()
    assert caught.value.key == "memory.embeddings.provider"
    assert service._task is None  # nothing started


def test_cosine_top_k_with_and_without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["car tyres", "garden tulips", "automobile insurance", "tulip bulbs in october"]
    blobs = [pack(fake_vector(t)) for t in texts]
    query = fake_vector("vehicle tyres")
    with_numpy = VectorIndex([10, 11, 12, 13], blobs, DIM).top(query, 2)
    monkeypatch.setattr(vectors, "_np", None)
    plain = VectorIndex([10, 11, 12, 13], blobs, DIM).top(query, 2)
    assert [i for i, _ in plain] == [i for i, _ in with_numpy] == [10, 12]
    for (_, a), (_, b) in zip(plain, with_numpy, strict=True):
        assert math.isclose(a, b, rel_tol=1e-5)
    assert VectorIndex([], [], 0).top(query, 3) == []


def test_reciprocal_rank_fusion() -> None:
    fused = fuse([[1, 2, 3], [3, 1, 4]], k=60)
    assert [i for i, _ in fused] == [1, 3, 2, 4]
    assert math.isclose(fused[0][1], 1 / 61 + 1 / 62)


def test_score_fusion_prefers_a_chunk_both_lists_found() -> None:
    # 2 is second in both lists: it beats 1 and 3, each first in one list only.
    lexical = [(1, 10.0), (2, 9.0), (4, 1.0)]
    vector = [(3, 0.8), (2, 0.75), (5, 0.1)]
    fused = combine(lexical, vector, 0.5)
    assert [i for i, _ in fused][:3] == [2, 1, 3]
    assert math.isclose(dict(fused)[2], 0.5 * 0.9 + 0.5 * 0.75 / 0.8)
    # The weight moves the balance: all vector, all BM25.
    assert [i for i, _ in combine(lexical, vector, 1.0)][:2] == [3, 2]
    assert [i for i, _ in combine(lexical, vector, 0.0)][:2] == [1, 2]
    assert combine([], vector, 0.6)[0][0] == 3

    # With a similarity floor, a cosine at the floor counts as nothing: 5 drops out entirely.
    floored = dict(combine(lexical, vector, 0.5, floor=0.2))
    assert math.isclose(floored[2], 0.5 * 0.9 + 0.5 * (0.75 - 0.2) / (0.8 - 0.2))
    assert floored[5] == 0.0 and math.isclose(floored[3], 0.5)
    # A vector list entirely below the floor leaves the BM25 order alone.
    assert [i for i, _ in combine(lexical, [(9, 0.1)], 0.5, floor=0.2)][:3] == [1, 2, 4]


def test_vector_weight_must_be_between_0_and_1(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match=r"between 0\.0 and 1\.0"):
        set_value(tmp_path / "config.toml", "memory.embeddings.vector_weight", "1.5")
    set_value(tmp_path / "config.toml", "memory.embeddings.vector_weight", "0.3")
    with pytest.raises(ConfigError, match="between"):
        set_value(tmp_path / "config.toml", "memory.embeddings.similarity_floor", "1")
    set_value(tmp_path / "config.toml", "memory.embeddings.similarity_floor", "0")
