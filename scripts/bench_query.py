"""Query API benchmark on the builtin engine over SciFact, every figure with a same-run baseline.

1. Overhead of POST /query against the same query run in-process on the same engine: one
   Runtime, served by the daemon's app on a port of this process (a keep-alive HTTP client in a
   thread) and called directly (`runtime.query.run`), alternating one of each; reported: p50 of
   each, and the median of the paired differences (the added cost). Small queries (1 dimension,
   no gap round, --overhead-docs abstracts) so the engine's own spread does not hide it.
2. 50 background queries at once (POST /query/async, then GET /query/{id} until done): all must
   complete; p50/p99 of submit → complete, against one background query alone.
3. NDJSON time to first line of POST /query/stream, against the same query's full time.

Part 1 also times GET /health through the same client: the round trip any request pays here.

    python scripts/bench_query.py [--dataset ../shared/datasets/scifact] [--docs 1000]
        [--rounds 40] [--concurrent 50]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_research import DEFAULT_DATASET, free_port, write_corpus  # one corpus set-up


def questions(dataset: Path, n: int) -> list[str]:
    with (dataset / "queries.jsonl").open(encoding="utf-8") as fh:
        found = [json.loads(line)["text"] for line in fh]
    return [found[i % len(found)] for i in range(n)]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def config_text(corpus: Path, args: argparse.Namespace) -> str:
    return (
        f"[memory]\npaths = [{json.dumps(str(corpus))}]\nwatch = false\n\n"
        f"[research]\ndimensions = {args.dimensions}\nmax_rounds = {args.loops}\n"
        f"max_concurrent_jobs = {args.jobs}\n\n[heartbeat]\nenabled = false\n\n"
        "[api]\nconfig_watch_interval = 0\n"
    )


class Daemon:
    """A real daemon process in its own home, started and stopped through the CLI."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALRESEARCH_")}
        self.env.update(LOCALRESEARCH_HOME=str(home), LOCALRESEARCH_SERVER__PORT=str(self.port))

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "localresearch", *args], env=self.env,
                       check=True, capture_output=True, timeout=300)  # fmt: skip

    def __enter__(self) -> Daemon:
        self.cli("daemon", "start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.cli("daemon", "stop")


class Http:
    """One keep-alive connection, as a script would hold."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:200]!r}")
        return json.loads(raw)

    def first_line(self, path: str, body: Any) -> tuple[float, float]:
        """Seconds to the first non-blank NDJSON line, and to the end of the stream."""
        start = time.perf_counter()
        self.conn.request("POST", path, body=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})  # fmt: skip
        response = self.conn.getresponse()
        first = 0.0
        while line := response.readline():
            if line.strip() and not first:
                first = time.perf_counter() - start
        return first, time.perf_counter() - start


async def in_process(home: Path) -> tuple[Any, Any, int]:
    """A Runtime over `home` and the daemon's app serving it on a free port, in this process
    (one engine, one database, one event loop for both sides of the comparison)."""
    os.environ["LOCALRESEARCH_HOME"] = str(home)
    from aiohttp import web

    from localresearch.config import load_config
    from localresearch.paths import resolve_paths
    from localresearch.server.app import make_app
    from localresearch.server.keys import RUNTIME

    paths = resolve_paths()
    port = free_port()
    app = make_app(load_config(paths.config_file), paths, port=port)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    runtime = app[RUNTIME]
    await runtime.wait_started()
    assert runtime.memory is not None
    await runtime.memory.wait_ready()
    return runtime, runner, port


def wait_ready(client: Http) -> None:
    """Until the daemon's index is built (a query found sources)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        result = client.call("POST", "/query", {"version": "1", "query": "vitamin", "loops": 0})
        if result["citations"]:
            return
        time.sleep(0.5)
    raise RuntimeError("the daemon's index never became ready")


async def bench_overhead(
    runtime: Any, client: Http, asked: list[str], rounds: int
) -> dict[str, float]:
    """Alternating direct and HTTP queries; for each HTTP one, the engine's own time inside
    it is recorded too, so its added cost is measured on the same request (the engine's
    spread between two runs, tens of ms on a loaded machine, would otherwise hide it)."""
    from localresearch.query.service import QueryRequest

    service = runtime.query
    run = service.run
    inside: list[float] = []

    async def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await run(*args, **kwargs)
        finally:
            inside.append(time.perf_counter() - start)

    setattr(service, "run", timed)  # noqa: B010 - the route calls runtime.query.run
    local: list[float] = []
    remote: list[float] = []
    try:
        for i in range(rounds):
            question = asked[i]
            start = time.perf_counter()
            await run(QueryRequest(query=question))
            local.append(time.perf_counter() - start)
            start = time.perf_counter()
            body = {"version": "1", "query": question}
            await asyncio.to_thread(client.call, "POST", "/query", body)
            remote.append(time.perf_counter() - start)
    finally:
        delattr(service, "run")
    floor = []
    for _ in range(rounds):
        start = time.perf_counter()
        await asyncio.to_thread(client.call, "GET", "/health")
        floor.append(time.perf_counter() - start)
    added = [r - x for r, x in zip(remote, inside, strict=True)]
    return {
        "in_process_p50_ms": statistics.median(local) * 1000,
        "http_p50_ms": statistics.median(remote) * 1000,
        "added_p50_ms": statistics.median(added) * 1000,
        "added_p99_ms": pct(added, 99) * 1000,
        "health_round_trip_p50_ms": statistics.median(floor) * 1000,
    }


def bench_concurrent(port: int, asked: list[str]) -> dict[str, float]:
    def one_alone() -> float:
        client = Http(port)
        start = time.perf_counter()
        query_id = client.call("POST", "/query/async", {"version": "1", "query": asked[0]})[
            "query_id"
        ]
        while client.call("GET", f"/query/{query_id}")["status"] in ("queued", "running"):
            time.sleep(0.01)
        return time.perf_counter() - start

    alone = statistics.median(one_alone() for _ in range(3))
    submitted: dict[str, float] = {}
    finished: dict[str, tuple[float, str]] = {}
    client = Http(port)
    start = time.perf_counter()
    for question in asked:
        query_id = client.call("POST", "/query/async", {"version": "1", "query": question})[
            "query_id"
        ]
        submitted[query_id] = time.perf_counter()

    def poll(ids: list[str]) -> None:
        mine = Http(port)
        pending = list(ids)
        while pending:
            for query_id in list(pending):
                status = mine.call("GET", f"/query/{query_id}")["status"]
                if status not in ("queued", "running"):
                    finished[query_id] = (time.perf_counter(), status)
                    pending.remove(query_id)
            time.sleep(0.02)

    ids = list(submitted)
    threads = [threading.Thread(target=poll, args=(ids[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = [finished[q][0] - submitted[q] for q in ids]
    return {
        "queries": len(ids),
        "complete": sum(1 for q in ids if finished[q][1] == "complete"),
        "alone_s": alone,
        "p50_s": pct(latencies, 50),
        "p99_s": pct(latencies, 99),
        "wall_s": max(f for f, _ in finished.values()) - start,
    }


def bench_first_line(client: Http, asked: list[str]) -> dict[str, float]:
    firsts, totals = [], []
    for question in asked:
        first, total = client.first_line("/query/stream", {"version": "1", "query": question})
        firsts.append(first)
        totals.append(total)
    return {
        "first_line_p50_ms": statistics.median(firsts) * 1000,
        "full_stream_p50_ms": statistics.median(totals) * 1000,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--docs", type=int, default=1000, help="abstracts indexed (0: all)")
    parser.add_argument("--rounds", type=int, default=100, help="queries per side (overhead)")
    parser.add_argument("--overhead-docs", type=int, default=300)
    parser.add_argument("--only-overhead", action="store_true")
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--dimensions", type=int, default=3)
    parser.add_argument("--loops", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="research.max_concurrent_jobs")
    args = parser.parse_args()
    if not (args.dataset / "corpus.jsonl").exists():
        sys.exit(f"no SciFact at {args.dataset}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus"
        docs = write_corpus(args.dataset, corpus, args.docs)
        homes = [root / "daemon"]
        for home in homes:
            home.mkdir()
            (home / "config.toml").write_text(config_text(corpus, args))
        asked = questions(args.dataset, max(args.rounds + 5, args.concurrent, 10))
        print(
            f"SciFact: {docs} abstracts; {args.dimensions} dimensions, {args.loops} gap rounds"
            f" per query; builtin engine; {os.cpu_count()} CPUs (shared, loaded)"
        )
        small = root / "small"
        small.mkdir()
        (small / "config.toml").write_text(
            config_text(root / "small-corpus", argparse.Namespace(dimensions=1, loops=0, jobs=2))
        )
        write_corpus(args.dataset, root / "small-corpus", args.overhead_docs)
        runtime, runner, port = await in_process(small)
        try:
            client = Http(port)
            from localresearch.query.service import QueryRequest

            for question in asked[:5]:  # warm up both paths
                await runtime.query.run(QueryRequest(query=question))
                await asyncio.to_thread(
                    client.call, "POST", "/query", {"version": "1", "query": question}
                )
            overhead = await bench_overhead(runtime, client, asked, args.rounds)
        finally:
            await runner.cleanup()
        print(json.dumps({"overhead": {"docs": args.overhead_docs, **overhead}}, indent=2))
        if args.only_overhead:
            return
        with Daemon(homes[0]) as daemon:
            client = Http(daemon.port)
            wait_ready(client)
            first = bench_first_line(client, asked[:10])
            print(json.dumps({"ndjson": first}, indent=2))
            concurrent = bench_concurrent(daemon.port, asked[: args.concurrent])
            print(json.dumps({"concurrent_async": concurrent}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
