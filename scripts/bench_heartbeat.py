"""Benchmark the heartbeat's file handling and per-task overhead, each against a same-run baseline.

    .venv/bin/python scripts/bench_heartbeat.py [--tasks 1000] [--due 200] [--repeat 20]

1. parse HEARTBEAT.md with N tasks            vs  just reading the file
2. merge-write one task's `due` (re-read, parse, locate, temp + fsync, check, replace)
                                              vs  a plain atomic write (temp + fsync + replace)
3. a heartbeat running D due tasks (instant runner, real SQLite, real daily log)
                                              vs  the same I/O done bare: one daily-log append and
                                                  one plain atomic write per task
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from localresearch.heartbeat import tasks as md
from localresearch.heartbeat.clock import ManualClock
from localresearch.heartbeat.file import HeartbeatFile
from localresearch.heartbeat.runner import TaskResult
from localresearch.heartbeat.service import HeartbeatService, HeartbeatSettings
from localresearch.store import Database
from localresearch.workspace import append_daily_log

TZ = UTC
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def make_doc(tasks: int, due: int) -> str:
    lines = ["# Heartbeat\n", "\n", "## Pending\n", "\n"]
    for i in range(tasks):
        when = "2026-06-01 09:00" if i < due else "2026-07-01 09:00"
        lines.append(f"- Task number {i}: what do my notes say about topic {i}?\n")
        lines.append(f"  due: {when}\n")
        if i % 3 == 0:
            lines.append("  every: 1d\n")
        if i % 5 == 0:
            lines.append("  priority: high\n")
    lines += ["\n", "## Completed\n"]
    return "".join(lines)


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds per call."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def plain_atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(text.encode())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class InstantRunner:
    async def ask(self, question: str) -> TaskResult:
        return TaskResult(summary=f"answer to {question}")

    async def research(self, question: str) -> TaskResult:
        return TaskResult(summary="started")

    async def research_result(self, job_id: str) -> TaskResult | None:
        return None

    async def wait_research(self, job_id: str) -> None:
        return None


async def heartbeat_run(root: Path, text: str) -> float:
    workspace = root / "ws"
    (workspace / "memory").mkdir(parents=True, exist_ok=True)
    (workspace / "HEARTBEAT.md").write_text(text)
    db = Database(root / "bench.db")
    await asyncio.to_thread(db.open)
    try:
        settings = HeartbeatSettings(enabled=False, timeout=timedelta(hours=1), tz=TZ)
        service = HeartbeatService(settings, workspace, db, InstantRunner(), clock=ManualClock(NOW))
        await service.start()
        start = time.perf_counter()
        result = await service.run()
        elapsed = time.perf_counter() - start
        await service.stop()
        assert result["failed"] == 0, result
        return elapsed
    finally:
        await asyncio.to_thread(db.close)


def bare_io(root: Path, text: str, due: int) -> float:
    workspace = root / "bare"
    (workspace / "memory").mkdir(parents=True, exist_ok=True)
    path = workspace / "HEARTBEAT.md"
    path.write_text(text)
    start = time.perf_counter()
    for i in range(due):
        append_daily_log(workspace, f"Heartbeat: task {i}", f"answer to task {i}", NOW)
        plain_atomic_write(path, text)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--due", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    text = make_doc(args.tasks, args.due)
    print(f"HEARTBEAT.md: {args.tasks} tasks, {len(text) / 1024:.0f} KiB; {args.due} due")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "HEARTBEAT.md"
        path.write_text(text)
        hb = HeartbeatFile(path, TZ)

        read = timed(path.read_text, args.repeat)
        parse = timed(lambda: md.parse(path.read_text(), TZ), args.repeat)
        print(f"1. read only  {read * 1e3:8.2f} ms   read+parse {parse * 1e3:8.2f} ms")

        target = md.parse(text, TZ).pending_tasks[args.tasks // 2]
        flip = [NOW + timedelta(days=1), NOW + timedelta(days=2)]
        counter = iter(range(10**9))

        def merge_write() -> None:
            current = next(t for t in hb.read().pending_tasks if t.id == target.id)
            hb.set_due(current, flip[next(counter) % 2])

        plain = timed(lambda: plain_atomic_write(path, path.read_text()), args.repeat)
        merged = timed(merge_write, args.repeat)
        print(f"2. plain write {plain * 1e3:7.2f} ms   merge-write {merged * 1e3:8.2f} ms")

        bare = bare_io(root, text, args.due)
        run = asyncio.run(heartbeat_run(root, text))
        print(
            f"3. bare I/O   {bare * 1e3 / args.due:8.2f} ms/task   heartbeat "
            f"{run * 1e3 / args.due:8.2f} ms/task ({run:.2f} s for {args.due} tasks)"
        )


if __name__ == "__main__":
    main()
