"""How texts are grouped for an encoder (memory/batches.py): sorted, capped, bounded."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from localresearch.memory.batches import cores, plan_batches, run_batches


def test_batches_are_sorted_by_length_and_capped_in_texts_and_padded_tokens() -> None:
    lengths = [300, 5, 512, 40, 7, 512, 260, 41, 6, 512]
    batches = plan_batches(lengths, batch_size=3, budget=1024, attention=10**9)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(lengths)  # shortest first: neighbours pad little
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 1024
    # 5 6 7 | 40 41 260 (3 x 260 <= 1024) | 300 512 (2 x 512) | 512 512
    assert [len(b) for b in batches] == [3, 3, 2, 2]
    assert plan_batches([], 16) == []
    assert plan_batches([2000], 16, budget=100) == [[0]]  # a long text still gets a batch


def test_long_texts_are_batched_by_their_attention_scores() -> None:
    """Texts x width^2 stays within the bound: long texts go a few at a time, short ones many."""
    bound = 2**18
    short = [32] * 40
    assert [len(b) for b in plan_batches(short, 32, attention=bound)] == [32, 8]  # the text cap
    medium = [128] * 20
    assert [len(b) for b in plan_batches(medium, 32, attention=bound)] == [16, 4]  # 16 x 128^2
    long = [256] * 10
    assert [len(b) for b in plan_batches(long, 32, attention=bound)] == [4, 4, 2]  # 4 x 256^2
    widest = [512] * 3
    assert [len(b) for b in plan_batches(widest, 32, attention=bound)] == [1, 1, 1]  # one fits
    mixed = [256, 30, 250, 31, 255, 29]
    batches = plan_batches(mixed, 32, attention=bound)
    assert [[mixed[i] for i in b] for b in batches] == [[29, 30, 31, 250], [255, 256]]
    for batch in batches:
        width = max(mixed[i] for i in batch)
        assert len(batch) * width * width <= bound
    # The default bound is one core's: a chunk-sized text alone, short ones together.
    assert [len(b) for b in plan_batches([256] * 3 + [64] * 10, 32)] == [8, 2, 1, 1, 1]


def test_one_worker_per_usable_core() -> None:
    """Never more workers than the cores this process may run on, and at least one."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 1 <= cores() <= (usable or 1)


def test_results_come_back_in_the_order_of_the_texts() -> None:
    """Batches run shortest first, on workers; each text still gets its own result."""
    lengths = [300, 5, 512, 40, 7, 260, 41, 6]
    seen: list[list[int]] = []

    def run(part: list[int]) -> list[str]:
        seen.append(part)
        return [f"text {i} ({lengths[i]} tokens)" for i in part]

    with ThreadPoolExecutor(3) as pool:
        got = run_batches(lengths, 3, run, pool)
    assert got == [f"text {i} ({n} tokens)" for i, n in enumerate(lengths)]
    assert sorted(map(tuple, seen)) == sorted(map(tuple, plan_batches(lengths, 3)))
    assert run_batches([], 3, run, None) == []
