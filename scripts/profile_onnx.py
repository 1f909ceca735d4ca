"""The onnx provider in-process against a bare onnxruntime + tokenizers loop, same texts.

The bare loop is the plain recipe (int8 model.onnx, batches of 16 padded to their longest, CLS
pooling, unit length, 2 intra-op threads); the provider is `OnnxEmbedder` as the daemon runs
it. Rounds alternate, so a busy machine weighs on both alike. Prints CPU-ms and wall rate per
text, the largest difference between the two vectors, and single-query latency.

    .venv/bin/python scripts/profile_onnx.py --dataset ../shared/datasets/scifact \\
        --model ~/.local/share/localresearch/models/bge-small --docs 96 --queries 60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from localresearch.memory.onnx_embedder import make_onnx_embedder

Embed = Callable[[list[str]], Any]


def bare(model: Path) -> Embed:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model / "model.onnx"), options)
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.enable_truncation(512)
    tokenizer.enable_padding()
    names = [i.name for i in session.get_inputs()]

    def embed(texts: list[str]) -> Any:
        encodings = tokenizer.encode_batch(texts)
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        states = session.run(None, {name: feed[name] for name in names})[0][:, 0]
        return states / np.linalg.norm(states, axis=1, keepdims=True)

    return embed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--model", required=True, help="folder with model.onnx + tokenizer.json")
    parser.add_argument("--docs", type=int, default=96)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    model = Path(args.model).expanduser()
    with (args.dataset / "corpus.jsonl").open(encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh][: args.docs]
    with (args.dataset / "queries.jsonl").open(encoding="utf-8") as fh:
        queries = [json.loads(line)["text"] for line in fh][: args.queries]
    texts = [f"{d.get('title', '')}\n{d.get('text', '')}" for d in docs]
    ours = make_onnx_embedder(str(model), 0, 16)
    runs: dict[str, Embed] = {"bare": bare(model), "onnx provider": ours.embed}
    for embed in runs.values():
        embed(texts[:2])
    for number in range(args.rounds):
        for name, embed in runs.items():
            cpu, wall = time.process_time(), time.perf_counter()
            for start in range(0, len(texts), 16):
                embed(texts[start : start + 16])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            latencies = []
            for query in queries:
                started = time.perf_counter()
                embed([query])
                latencies.append(1000 * (time.perf_counter() - started))
            latencies.sort()
            p50 = latencies[len(latencies) // 2]
            p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
            print(f"{name} round {number + 1}: {1000 * cpu / len(texts):.0f} CPU-ms per text,"
                  f" {len(texts) / wall:.2f} texts/s; query p50 {p50:.1f}"
                  f" ms, p99 {p99:.1f} ms; load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    a = np.concatenate([runs["bare"](texts[i : i + 16]) for i in range(0, len(texts), 16)])
    b = np.asarray(ours.embed(texts))
    print(f"largest difference between the two vectors: {float(np.abs(a - b).max()):.2e}")


if __name__ == "__main__":
    main()
