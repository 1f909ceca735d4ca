"""The HTTP embedders on aiohttp against a protocol-level fake server: pooled connections,
timeouts, unreachable endpoints, keys masked in errors, and a clean close."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from localresearch.config.schema import EmbeddingsConfig
from localresearch.errors import ProviderError
from localresearch.memory import embed_http
from localresearch.memory.embed_http import HTTPEmbedder
from localresearch.memory.embeddings import make_embedder
from tests.fakes.embeddings import KEY, EmbeddingsServer, vector


@pytest.fixture
def server() -> Iterator[EmbeddingsServer]:
    fake = EmbeddingsServer()
    fake.start()
    yield fake
    fake.stop()


def _embedder(cfg: EmbeddingsConfig) -> HTTPEmbedder:
    embedder = make_embedder(cfg)
    assert isinstance(embedder, HTTPEmbedder)
    return embedder


def test_both_wire_formats_share_one_pooled_connection(
    server: EmbeddingsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ollama = _embedder(EmbeddingsConfig(provider="ollama", model="m", base_url=server.url))
    monkeypatch.setenv("TEST_EMBED_HTTP_KEY", KEY)
    openai = _embedder(
        EmbeddingsConfig(
            provider="openai", model="m", base_url=f"{server.url}/v1",
            api_key_env="TEST_EMBED_HTTP_KEY",
        )
    )  # fmt: skip
    try:
        for n in range(5):
            assert ollama.embed([f"a{n}", "b"]) == [vector(f"a{n}"), vector("b")]
        assert openai.embed(["x", "y"]) == [vector("x"), vector("y")]
        assert openai.embed(["z"]) == [vector("z")]
    finally:
        ollama.close()
        openai.close()
    assert server.requests == 7
    # Keep-alive: each embedder reuses its one connection (urllib opened one per request).
    assert len(server.connections) == 2


def test_embedding_from_several_threads_at_once(server: EmbeddingsServer) -> None:
    embedder = _embedder(EmbeddingsConfig(provider="ollama", model="m", base_url=server.url))
    results: dict[int, list[list[float]]] = {}

    def work(n: int) -> None:
        results[n] = embedder.embed([f"t{n}"])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    embedder.close()
    assert results == {n: [vector(f"t{n}")] for n in range(6)}


def test_a_key_echoed_in_an_error_is_masked(
    server: EmbeddingsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-wrongwrong-987654321"
    monkeypatch.setenv("TEST_EMBED_HTTP_KEY", wrong)
    embedder = _embedder(
        EmbeddingsConfig(
            provider="openai", model="m", base_url=f"{server.url}/v1",
            api_key_env="TEST_EMBED_HTTP_KEY",
        )
    )  # fmt: skip
    try:
        with pytest.raises(ProviderError) as caught:
            embedder.embed(["x"])
    finally:
        embedder.close()
    message = str(caught.value)
    assert message.startswith("embeddings endpoint answered 401: Incorrect API key provided")
    assert wrong not in message and "***" in message


def test_a_stalled_endpoint_times_out(
    server: EmbeddingsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embed_http, "TIMEOUT_S", 0.5)
    server.stall = 5.0
    embedder = _embedder(EmbeddingsConfig(provider="ollama", model="m", base_url=server.url))
    began = time.monotonic()
    try:
        with pytest.raises(ProviderError, match=r"did not answer within 0\.5 s"):
            embedder.embed(["x"])
    finally:
        embedder.close()
    assert time.monotonic() - began < 3.0


def test_an_unreachable_endpoint_is_a_clear_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    embedder = _embedder(EmbeddingsConfig(provider="ollama", model="m", base_url=url))
    try:
        with pytest.raises(
            ProviderError, match=f"cannot reach embeddings endpoint {url}/api/embed"
        ):
            embedder.embed(["x"])
    finally:
        embedder.close()


def test_close_ends_the_loop_thread(server: EmbeddingsServer) -> None:
    embedder = _embedder(EmbeddingsConfig(provider="ollama", model="m", base_url=server.url))
    name = f"embeddings {embedder.name}"
    embedder.embed(["x"])
    assert any(t.name == name for t in threading.enumerate())
    embedder.close()
    deadline = time.monotonic() + 5
    while any(t.name == name for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == name for t in threading.enumerate())
