"""The `onnx` embeddings provider: an ONNX text encoder run by onnxruntime, in-process, no torch.

A model folder holds `model.onnx` (or `onnx/model.onnx`) and `tokenizer.json`. How token states
become one vector is the model family's rule, read from the folder, never guessed:
`localresearch-embedding.json` (written by `research memory embeddings install`), else
sentence-transformers' `modules.json` and its Pooling module's `config.json` (`1_Pooling/`).
onnxruntime and tokenizers (the `embeddings` extra) are imported only when the provider is chosen.
"""

from __future__ import annotations

import importlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localresearch.config.loader import ConfigError
from localresearch.errors import ProviderError
from localresearch.memory.batches import BATCH_ATTENTION, cores, run_batches
from localresearch.memory.vectors import single_threaded_blas

MANIFEST = "localresearch-embedding.json"
POOLINGS = ("cls", "mean")
DEFAULT_MAX_TOKENS = 512
_KEY = "memory.embeddings.model"


@dataclass(frozen=True)
class ModelLayout:
    """What a model folder prescribes: its files, pooling, normalisation and token limit."""

    onnx: Path
    tokenizer: Path
    pooling: str
    normalize: bool
    max_tokens: int
    name: str


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError("config", f"cannot read {path}: {exc}", key=_KEY) from None


_ST_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean"}


def _pooling_of(config: dict[str, Any], path: Path) -> str:
    """sentence-transformers' Pooling config → cls or mean (the modes this provider runs)."""
    chosen = [key for key, value in config.items() if key.startswith("pooling_mode_") and value]
    if len(chosen) != 1 or chosen[0] not in _ST_MODES:
        raise ConfigError(
            "config", f"{path}: pooling {chosen or 'none'} is not one of {POOLINGS}", key=_KEY
        )
    return _ST_MODES[chosen[0]]


def _sentence_transformers_layout(folder: Path) -> tuple[str, bool, int]:
    """Pooling, normalisation and max tokens from a sentence-transformers folder."""
    modules_file = folder / "modules.json"
    modules = _read_json(modules_file) if modules_file.exists() else []
    if not isinstance(modules, list):
        raise ConfigError("config", f"{modules_file}: expected a list of modules", key=_KEY)
    kinds = {
        str(m.get("type", "")).rsplit(".", 1)[-1]: str(m.get("path", ""))
        for m in modules
        if isinstance(m, dict)
    }
    pooling_dir = folder / kinds.get("Pooling", "1_Pooling")
    pooling_file = pooling_dir / "config.json"
    if not pooling_file.exists():
        raise ConfigError(
            "config",
            f"{folder} does not say how to pool token vectors: add {MANIFEST}"
            ' ({"pooling": "cls" or "mean", "normalize": true}) or 1_Pooling/config.json',
            key=_KEY,
        )
    pooling = _pooling_of(_read_json(pooling_file), pooling_file)
    max_tokens = DEFAULT_MAX_TOKENS
    bert_config = folder / "sentence_bert_config.json"
    if bert_config.exists():
        max_tokens = int(_read_json(bert_config).get("max_seq_length") or max_tokens)
    return pooling, "Normalize" in kinds, max_tokens


def read_layout(model: str) -> ModelLayout:
    """The model folder's files and rules; a ConfigError says what is missing."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            "config",
            f"provider 'onnx' needs a model folder (model.onnx + tokenizer.json); {folder} is not"
            " one: research memory embeddings install bge-small",
            key=_KEY,
        )
    onnx = next(
        (p for p in (folder / "model.onnx", folder / "onnx" / "model.onnx") if p.exists()), None
    )
    tokenizer = folder / "tokenizer.json"
    if onnx is None or not tokenizer.exists():
        missing = "model.onnx" if onnx is None else "tokenizer.json"
        raise ConfigError("config", f"{folder} has no {missing}", key=_KEY)
    manifest_file = folder / MANIFEST
    name = folder.name
    if manifest_file.exists():
        manifest = _read_json(manifest_file)
        pooling = str(manifest.get("pooling", ""))
        if pooling not in POOLINGS:
            raise ConfigError(
                "config", f"{manifest_file}: pooling {pooling!r} is not one of {POOLINGS}", key=_KEY
            )
        normalize = bool(manifest.get("normalize", True))
        max_tokens = int(manifest.get("max_tokens") or DEFAULT_MAX_TOKENS)
        name = str(manifest.get("name") or name)
    else:
        pooling, normalize, max_tokens = _sentence_transformers_layout(folder)
    return ModelLayout(onnx, tokenizer, pooling, normalize, max_tokens, name)


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(
            "config",
            f"provider 'onnx' needs {name}: pip install 'localresearch[embeddings]' ({exc})",
            key="memory.embeddings.provider",
        ) from None


class OnnxEmbedder:
    """Token states of an ONNX encoder, pooled and normalised as the model folder says."""

    def __init__(self, layout: ModelLayout, threads: int = 0, batch_size: int = 16) -> None:
        self.layout = layout
        self.name = f"onnx/{layout.name}"
        self.workers = threads if threads > 0 else cores()
        self.batch_size = max(batch_size, 1)
        self.attention = BATCH_ATTENTION  # scores per head in a batch (memory/batches.py)
        single_threaded_blas()  # numpy is imported here first when the daemon embeds
        self._np = _import("numpy")
        self._ort = _import("onnxruntime")
        self._tokenizers = _import("tokenizers")
        self._session: Any = None
        self._tokenizer: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._inputs: dict[str, str] = {}
        self._lock = threading.Lock()

    def _load(self) -> None:
        """The session and tokenizer, once (about 0.3 s for bge-small)."""
        with self._lock:
            if self._session is not None:
                return
            options = self._ort.SessionOptions()
            # Each run on one thread, several runs at once (`workers`): a model this small
            # spends much of a multi-threaded run handing its many small ops between threads;
            # one thread per batch embedded texts ~1.3x faster and a query ~1.5x sooner
            # (docs/benchmarks.md, "ONNX batches and threads").
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            try:
                session = self._ort.InferenceSession(
                    str(self.layout.onnx), options, providers=["CPUExecutionProvider"]
                )
                tokenizer = self._tokenizers.Tokenizer.from_file(str(self.layout.tokenizer))
            except Exception as exc:  # a corrupt or foreign file: say which
                raise ProviderError(
                    f"cannot load the onnx model {self.layout.onnx}: {exc}"
                ) from None
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=self.layout.max_tokens)
            self._inputs = {i.name: i.type for i in session.get_inputs()}
            self._tokenizer = tokenizer
            if self.workers > 1:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="onnx-embed")
            self._session = session

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Vectors in the order of `texts`; batches group texts of similar length (less padding)
        and run `workers` at a time."""
        if not texts:
            return []
        self._load()
        np = self._np
        if len(texts) == 1:  # a search's query: no batch to plan, no tokenizer thread pool
            return [self._run([self._tokenizer.encode(texts[0])])[0].tolist()]
        encodings = self._tokenizer.encode_batch(texts)

        def run(part: list[int]) -> Any:
            return self._run([encodings[i] for i in part])

        lengths = [len(e.ids) for e in encodings]
        out = run_batches(lengths, self.batch_size, run, self._pool, self.attention)
        return [[float(x) for x in vector] for vector in np.asarray(out)]

    def _run(self, encodings: list[Any]) -> Any:
        """One padded batch through the session, pooled (and normalised) per the layout."""
        np = self._np
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = encoding.attention_mask
            types[row, :n] = encoding.type_ids
        given = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feed = {}
        for name, kind in self._inputs.items():
            if name not in given:
                raise ProviderError(f"the onnx model wants an input {name!r} this provider lacks")
            feed[name] = given[name].astype(np.int32) if "int32" in kind else given[name]
        try:
            states = self._session.run(None, feed)[0]
        except Exception as exc:
            raise ProviderError(f"the onnx model failed: {exc}") from None
        states = np.asarray(states, dtype=np.float32)
        if states.ndim == 2:  # the graph pools itself
            pooled = states
        elif self.layout.pooling == "cls":
            pooled = states[:, 0, :]
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        if self.layout.normalize:
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            pooled = pooled / np.maximum(norms, 1e-12)
        return pooled


def make_onnx_embedder(model: str, threads: int, batch_size: int) -> OnnxEmbedder:
    """An OnnxEmbedder for the folder `model` (checked now; the session loads on first use)."""
    if not model:
        raise ConfigError(
            "config",
            "provider 'onnx' needs a model folder: research memory embeddings install bge-small",
            key=_KEY,
        )
    return OnnxEmbedder(read_layout(model), threads, batch_size)
