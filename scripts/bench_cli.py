"""What a CLI command costs end to end against a running daemon, beside the same command as
committed at another revision, interleaved in one run.

    .venv/bin/python scripts/bench_cli.py --against 8770b66 --runs 15

One daemon (this checkout's) serves both; each command is `python -m localresearch ...` run with
its working directory at the checkout being measured, so Python imports that checkout's package.
Prints the medians and their ratio (current / against) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "memory search": ["memory", "search", "wal checkpoint", "--limit", "3"],
    "status": ["status"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(cwd: Path, argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "localresearch", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", required=True, help="the revision to compare with")
    parser.add_argument("--runs", type=int, default=15, help="pairs per command")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lr-bench-cli-"))
    old = work / "against"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.against],
        check=True,
    )
    env = dict(
        os.environ,
        LOCALRESEARCH_HOME=str(work / "home"),
        LOCALRESEARCH_SERVER__PORT=str(free_port()),
        LOCALRESEARCH_HEARTBEAT__ENABLED="false",
    )
    research = [sys.executable, "-m", "localresearch"]
    results: dict[str, object] = {"against": args.against, "load": os.getloadavg()[0]}
    try:
        subprocess.run([*research, "daemon", "start"], cwd=ROOT, env=env, check=True)
        subprocess.run([*research, "memory", "add", "docs"], cwd=ROOT, env=env, check=True)
        for name, argv in COMMANDS.items():
            now, then = [], []
            for i in range(args.runs):  # each side goes first in turn
                pairs = [(ROOT, now), (old, then)]
                for cwd, into in pairs if i % 2 else reversed(pairs):
                    into.append(timed(cwd, argv, env))
            results[name] = {
                "now_ms": round(statistics.median(now) * 1000, 1),
                "against_ms": round(statistics.median(then) * 1000, 1),
                "ratio": round(statistics.median(now) / statistics.median(then), 3),
            }
    finally:
        subprocess.run([*research, "daemon", "stop"], cwd=ROOT, env=env, capture_output=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)])
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
