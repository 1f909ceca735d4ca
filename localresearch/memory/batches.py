"""Grouping texts for an encoder: by length, within padding and attention bounds, on every core."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")

# Padded tokens per batch: 16 texts of up to 256 tokens, fewer of longer ones. onnxruntime's
# arena keeps the largest batch's buffers (attention grows with the square of the width):
# 16 x 512 tokens held ~1 GB of RSS for bge-small, 8 x 512 about half.
BATCH_TOKENS = 16 * 256
# Attention scores per batch and head (texts x width x width) for one thread: past this they
# leave the core's cache and softmax, the mask and the two attention products wait on memory.
# 2^15 is one text of 181 tokens or more, 2 of 128, 8 of 64; docs/benchmarks.md ("ONNX batches
# and threads") has the sweep on both corpora.
BATCH_ATTENTION = 2**15


def plan_batches(
    lengths: list[int],
    batch_size: int,
    budget: int = BATCH_TOKENS,
    attention: int = BATCH_ATTENTION,
) -> list[list[int]]:
    """Indexes of texts grouped shortest first: each batch is padded to its own longest text,
    holds at most `batch_size` texts, `budget` padded tokens and `attention` scores per head
    (texts x width^2); one text always fits."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        width = lengths[index]  # sorted: the newcomer is the longest
        count = len(current) + 1
        if current and (
            count > batch_size or count * width > budget or count * width * width > attention
        ):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def run_batches(
    lengths: list[int],
    batch_size: int,
    run: Callable[[list[int]], Sequence[T]],
    pool: Executor | None,
    attention: int = BATCH_ATTENTION,
) -> list[T]:
    """Each text's result in the order of `lengths`: `run` gets the planned batches (indexes)
    and returns one result per index, on `pool`'s workers when there is more than one batch."""
    parts = plan_batches(lengths, batch_size, BATCH_TOKENS, attention)
    results = pool.map(run, parts) if pool is not None and len(parts) > 1 else map(run, parts)
    done: dict[int, T] = {}
    for part, values in zip(parts, results, strict=True):
        done.update(zip(part, values, strict=True))
    return [done[index] for index in range(len(lengths))]


def cores() -> int:
    """Cores this process may run on (physical ones where known): the default worker count."""
    import psutil  # here: memory/ is imported at start-up, and only embedders ask

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    physical = psutil.cpu_count(logical=False)  # None where it cannot tell
    return max(1, min(usable or 1, physical or usable or 1))
