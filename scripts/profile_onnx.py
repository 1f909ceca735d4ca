"""The onnx provider in-process against a bare onnxruntime + tokenizers loop, same texts.

The bare loop is the plain recipe (int8 model.onnx, batches of 16 padded to their longest, CLS
pooling, unit length, 2 intra-op threads); the provider is `OnnxEmbedder` as the daemon runs
it. Rounds alternate, so a busy machine weighs on both alike. Prints CPU-ms and wall rate per
text, the largest difference between the two vectors, and single-query latency.

    .venv/bin/python scripts/profile_onnx.py --dataset ../shared/datasets/scifact \\
        --model ~/.local/share/localresearch/models/bge-small --docs 96 --queries 60

`--sweep` instead times the provider's batch layout on two corpora with other statistics: the
chunks the daemon makes of SciFact abstracts and of this repository's docs/ (DOCS_EVAL_AT pins
it), 32 texts per call as the vector worker sends them, for each bound on attention scores per
batch (texts x width^2), beside the layout until 2026-12-02 (batches of up to 16 texts and
4,096 tokens on 2 intra-op threads); rounds alternate, medians are printed.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from localresearch.memory.batches import BATCH_TOKENS, plan_batches
from localresearch.memory.chunking import chunk_blocks
from localresearch.memory.extract import extract_blocks
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


def until_2026_12_02(model: Path) -> Embed:
    """The provider's layout at f2e891a: sorted batches of <= 16 texts and 4,096 tokens, one
    at a time on 2 intra-op threads that sleep when idle; CLS pooling, unit length."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(model / "model.onnx"), options)
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.enable_truncation(512)

    def embed(texts: list[str]) -> Any:
        encodings = tokenizer.encode_batch(texts)
        out: list[Any] = [None] * len(texts)
        lengths = [len(e.ids) for e in encodings]
        for part in plan_batches(lengths, 16, BATCH_TOKENS, attention=2**62):
            width = max(lengths[i] for i in part)
            ids = np.zeros((len(part), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(part):
                ids[row, : lengths[i]] = encodings[i].ids
                mask[row, : lengths[i]] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            states = session.run(None, feed)[0][:, 0]
            for row, i in enumerate(part):
                out[i] = states[row] / np.linalg.norm(states[row])
        return np.asarray(out)

    return embed


def chunk_texts(files: list[Path], limit: int) -> list[str]:
    """The texts the vector worker embeds for these files' chunks (heading, then content)."""
    texts: list[str] = []
    for path in files:
        for chunk in chunk_blocks(extract_blocks(path, path.read_bytes())):
            texts.append(f"{chunk.heading}\n{chunk.content}" if chunk.heading else chunk.content)
    return texts[:limit]


def sweep(args: argparse.Namespace, model: Path) -> None:
    import tempfile

    import judge_memory as judged
    from bench_memory import load_jsonl, write_corpus

    bounds = [2**14, 2**15, 2**16, 2**17, 2**18, 2**19]
    ours = make_onnx_embedder(str(model), 0, 32)
    layouts: dict[str, Embed] = {"until 2026-12-02": until_2026_12_02(model)}
    with tempfile.TemporaryDirectory(prefix="profile-onnx-") as tmp:
        folder = Path(tmp) / "scifact"
        write_corpus(load_jsonl(args.dataset / "corpus.jsonl")[: args.docs], folder)
        corpora = {
            "SciFact": chunk_texts(sorted(folder.iterdir()), args.chunks),
            "docs": chunk_texts(sorted(judged.DOCS.glob("*.md")), args.chunks),
        }
    for name, texts in corpora.items():
        lengths = sorted(len(e.ids) for e in ours_tokenizer(model).encode_batch(texts))
        print(f"{name}: {len(texts)} chunks, tokens median {lengths[len(lengths) // 2]},"
              f" p90 {lengths[int(0.9 * len(lengths))]}", flush=True)  # fmt: skip
        rates: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            runs = {**layouts, **{f"bound 2^{b.bit_length() - 1}": b for b in bounds}}
            for label, layout in runs.items():
                if isinstance(layout, int):
                    ours.attention = layout
                    embed: Embed = ours.embed
                else:
                    embed = layout
                started = time.perf_counter()
                for start in range(0, len(texts), 32):  # the worker's windows are sorted
                    embed(sorted(texts[start : start + 32], key=len))
                rates.setdefault(label, []).append(len(texts) / (time.perf_counter() - started))
        base = float(np.median(rates["until 2026-12-02"]))
        for label, values in rates.items():
            rate = float(np.median(values))
            print(f"  {label}: {rate:.1f} chunks/s ({rate / base:.2f}x)", flush=True)


def ours_tokenizer(model: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.enable_truncation(512)
    return tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--model", required=True, help="folder with model.onnx + tokenizer.json")
    parser.add_argument("--docs", type=int, default=96)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sweep", action="store_true", help="batch layouts on two corpora")
    parser.add_argument("--chunks", type=int, default=320, help="--sweep: chunks per corpus")
    args = parser.parse_args()
    model = Path(args.model).expanduser()
    if args.sweep:
        sweep(args, model)
        return
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
