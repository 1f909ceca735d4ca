"""Chat throughput over time: does a real daemon answer as many chats in its last 30 s as in its
first, while every exchange is appended to the day's log and the log is indexed?

    python scripts/bench_chat_load.py [--minutes 5] [--workers 4] [--window 30] [--warmup 15]

A real daemon (`research daemon start`, builtin engine, its own temporary home with --notes
notes, indexed before the load starts) gets --workers concurrent clients each posting chats
(POST /api/chat, each exchange kept in a session and logged to the day's log); after --warmup
seconds, for --minutes, chats answered 200 are counted per
--window seconds. The baseline is the run's own first window: the result is the last window's
throughput over the first's (the target: no fall of more than 10%), with the load average of
each window (the machine's other work moves it), the daemon's CPU time per chat in each window
(its own work per answer, which the machine's load does not add to) and the daily log's size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from bench_soak import WORDS, free_port  # the same words and ports as the soak


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))


async def worker(session: aiohttp.ClientSession, url: str, n: int, stamps: list[float]) -> None:
    rng = random.Random(n)
    async with session.post(f"{url}/api/sessions", json={"title": f"load {n}"}) as r:
        sid = (await r.json())["id"]
    while True:
        body = {"message": _text(rng), "session_id": sid}
        async with session.post(f"{url}/api/chat", json=body) as r:
            await r.read()
            if r.status == 200:
                stamps.append(time.monotonic())


async def run(args: argparse.Namespace, url: str, daemon: psutil.Process) -> dict[str, Any]:
    stamps: list[float] = []
    loads: list[float] = []
    cpu: list[float] = []  # the daemon's CPU seconds (user + system) at each window's end
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        while True:  # the notes indexed first: the first window is not the first pass
            async with session.get(f"{url}/api/memory/stats") as r:
                if not (await r.json()).get("index", {}).get("indexing", True):
                    break
            await asyncio.sleep(0.5)
        tasks = [asyncio.create_task(worker(session, url, n, stamps)) for n in range(args.workers)]
        await asyncio.sleep(args.warmup)  # connections, thread pools, caches
        began = time.monotonic()
        end = began + args.minutes * 60
        cpu.append(sum(daemon.cpu_times()[:2]))
        while time.monotonic() < end:
            await asyncio.sleep(min(args.window, end - time.monotonic()))
            loads.append(os.getloadavg()[0])
            cpu.append(sum(daemon.cpu_times()[:2]))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    windows = int(args.minutes * 60 // args.window)
    counts = [0] * windows
    for stamp in stamps:
        index = int((stamp - began) // args.window)
        if index < windows:
            counts[index] += 1
    rates = [round(c / args.window, 1) for c in counts]
    # CPU per chat: the daemon's own work per answer, which other work on the machine slows
    # down but does not add to (chats/s falls with the machine's load; this should not).
    cpu_ms = [
        round(1000 * (cpu[i + 1] - cpu[i]) / counts[i], 2) if counts[i] else None
        for i in range(min(windows, len(cpu) - 1))
    ]
    return {
        "chats": len(stamps),
        "per_s_by_window": rates,
        "load_by_window": [round(x, 1) for x in loads[:windows]],
        "first_per_s": rates[0],
        "last_per_s": rates[-1],
        "last_over_first": round(rates[-1] / rates[0], 3) if rates[0] else None,
        "median_per_s": round(statistics.median(rates), 1),
        "daemon_cpu_ms_per_chat_by_window": cpu_ms,
        "cpu_per_chat_last_over_first": round(cpu_ms[-1] / cpu_ms[0], 3)
        if cpu_ms and cpu_ms[0] and cpu_ms[-1]
        else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=4, help="concurrent chat clients")
    parser.add_argument("--window", type=float, default=30.0, help="seconds per window")
    parser.add_argument("--notes", type=int, default=200)
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of chats not counted")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lr-chatload-") as tmp:
        home = Path(tmp)
        notes = home / "data" / "workspace" / "notes"
        notes.mkdir(parents=True)
        rng = random.Random(0)
        for n in range(args.notes):
            paragraphs = "\n\n".join(_text(rng) + "." for _ in range(12))
            (notes / f"note-{n}.md").write_text(f"# Note {n}\n\n{paragraphs}\n")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALRESEARCH_")}
        env.update(
            LOCALRESEARCH_HOME=str(home),
            LOCALRESEARCH_SERVER__PORT=str(port),
            LOCALRESEARCH_HEARTBEAT__ENABLED="false",
        )

        def cli(*argv: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "localresearch", *argv]
            return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

        started = cli("daemon", "start")
        if started.returncode != 0:
            raise SystemExit(f"daemon did not start: {started.stderr}")
        try:
            pid = json.loads((home / "state" / "daemon.pid").read_text())["pid"]
            result = asyncio.run(run(args, f"http://127.0.0.1:{port}", psutil.Process(pid)))
            stats = cli("memory", "stats", "--json")
            if stats.returncode == 0:
                index = json.loads(stats.stdout).get("index", {})
                result["database_mb"] = round(index.get("database_size_bytes", 0) / 2**20, 1)
        finally:
            cli("daemon", "stop")
        daily = (home / "data" / "workspace" / "memory").glob("20??-??-??.md")
        result["daily_log_mb"] = round(sum(p.stat().st_size for p in daily) / 2**20, 2)
    result["workers"] = args.workers
    print(json.dumps(result, indent=2))
    ratio = result["last_over_first"]
    return 0 if ratio is not None and ratio >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
