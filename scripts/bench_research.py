"""Research job benchmark on the builtin engine, every figure with a same-run baseline.

1. One job over the full SciFact corpus (5,183 abstracts): wall time, against the baseline of the
   memory searches that job makes, run back to back (the retrieval floor).
2. 20 jobs submitted at once (max_concurrent_jobs as configured), against the same 20 run one
   after another.
3. 500 SSE subscribers on one job over real HTTP (clients in a separate process): delivery
   latency p50/p99 (event timestamp → client receipt) and a check that every subscriber got every
   event exactly once; baseline: 1 subscriber.
4. The research-sessions API over real HTTP: create → questions → feedback → plan → execute →
   results, end to end per topic; baseline: a `research deep` job on the same topic in-process.
5. 200 subscribers on one session's /stream while it executes: p50/p99 event delay, every
   stream complete; baseline: 1 subscriber.

    python scripts/bench_research.py [--dataset ../shared/datasets/scifact] [--jobs 20]
        [--subscribers 500] [--stream-subscribers 200] [--docs 0 (all)] [--sessions-only]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "scifact"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_corpus(dataset: Path, dest: Path, limit: int) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            body = f"# {doc['title'].strip()}\n\n{doc['text'].strip()}\n"
            (dest / f"{doc['_id']}.md").write_text(body, encoding="utf-8")
            count += 1
            if limit and count >= limit:
                break
    return count


def questions(dataset: Path, n: int) -> list[str]:
    with (dataset / "queries.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line, _ in zip(fh, range(n), strict=False)]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class CountingSearcher:
    """Wraps the memory service to record the searches a job makes (for the baseline)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, int]] = []

    async def search(self, query: str, limit: int = 10) -> Any:
        self.calls.append((query, limit))
        return await self.inner.search(query, limit)

    async def wait_ready(self) -> None:
        await self.inner.wait_ready()


async def bench_jobs(runtime: Any, dataset: Path, n_jobs: int) -> dict[str, Any]:
    jobs = runtime.jobs
    counting = CountingSearcher(runtime.memory)
    jobs.memory = counting
    qs = questions(dataset, n_jobs + 3)
    single: list[float] = []
    baseline: list[float] = []
    for question in qs[:3]:
        counting.calls.clear()
        start = time.perf_counter()
        job = await jobs.submit(question)
        final = await jobs.wait(job.id)
        single.append(time.perf_counter() - start)
        assert final.status == "complete", final.error
        calls = list(counting.calls)
        start = time.perf_counter()
        for query, limit in calls:
            await runtime.memory.search(query, limit)
        baseline.append(time.perf_counter() - start)
    sequential_start = time.perf_counter()
    for question in qs[3 : 3 + n_jobs]:
        job = await jobs.submit(question)
        await jobs.wait(job.id)
    sequential = time.perf_counter() - sequential_start
    start = time.perf_counter()
    submitted = [await jobs.submit(q) for q in qs[3 : 3 + n_jobs]]
    finals = await asyncio.gather(*(jobs.wait(j.id) for j in submitted))
    concurrent = time.perf_counter() - start
    assert all(f.status == "complete" for f in finals)
    return {
        "single_job_s": {"median": statistics.median(single), "max": max(single)},
        "baseline_searches_s": {"median": statistics.median(baseline), "searches": len(calls)},
        "jobs": n_jobs,
        "sequential_s": sequential,
        "concurrent_s": concurrent,
        "max_concurrent_jobs": runtime.config.research.max_concurrent_jobs,
    }


# -- subscribers --------------------------------------------------------------------------------


class _SSEClient(asyncio.Protocol):
    """A bare HTTP/1.1 SSE reader: `data_received` stamps each segment as it lands (no parsing,
    no coroutine per chunk), so the client adds as little as possible to what it measures."""

    def __init__(self, request: bytes, done: asyncio.Future[None]) -> None:
        self.request = request
        self.done = done
        self.segments: list[tuple[float, bytes]] = []

    def connection_made(self, transport: Any) -> None:
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.segments.append((time.time(), data))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def events(self) -> tuple[list[int], list[float]]:
        """De-chunk the body, then date each frame by the segment that completed it."""
        raw = b"".join(data for _, data in self.segments)
        ends = list(itertools.accumulate(len(data) for _, data in self.segments))
        pos = raw.index(b"\r\n\r\n") + 4
        body = bytearray()
        raw_offsets: list[int] = []  # raw offset of each body byte
        while pos < len(raw):
            line_end = raw.index(b"\r\n", pos)
            size = int(raw[pos:line_end], 16)
            if size == 0:
                break
            start = line_end + 2
            body += raw[start : start + size]
            raw_offsets.extend(range(start, start + size))
            pos = start + size + 2
        ids: list[int] = []
        latencies: list[float] = []
        cursor = 0
        for frame in bytes(body).split(b"\n\n"):
            cursor += len(frame) + 2
            match = re.match(rb"id: (\d+)\n(?:event: [^\n]*\n)?data: (.*)", frame, re.S)
            if not match:
                continue
            received = self.segments[bisect.bisect_left(ends, raw_offsets[cursor - 1] + 1)][0]
            sent = datetime.fromisoformat(json.loads(match.group(2))["timestamp"]).timestamp()
            ids.append(int(match.group(1)))
            latencies.append((received - sent) * 1000)
        return ids, latencies


async def run_clients(url: str, count: int, after: int = 0) -> None:
    """Child process: `count` SSE subscribers; prints one JSON line with what each received."""
    parts = urlsplit(url)
    resume = f"Last-Event-ID: {after}\r\n" if after else ""
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Accept: text/event-stream\r\n{resume}Connection: close\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(count):
        done: asyncio.Future[None] = loop.create_future()
        _, client = await loop.create_connection(
            lambda done=done: _SSEClient(request, done),  # type: ignore[misc]
            parts.hostname,
            parts.port,
        )
        clients.append(client)
    await asyncio.gather(*(c.done for c in clients))
    print(json.dumps([dict(zip(("ids", "latencies"), c.events(), strict=True)) for c in clients]))


async def bench_subscribers(
    config: Any, paths: Any, dataset: Path, count: int, procs: int
) -> dict[str, Any]:
    from aiohttp import web

    from localresearch.research.builtin import BuiltinEngine
    from localresearch.server.app import make_app
    from localresearch.server.keys import RUNTIME

    port = free_port()
    app = make_app(config, paths, port=port)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    runtime = app[RUNTIME]
    await runtime.wait_started()  # the app starts its core in the background
    await runtime.memory.wait_ready()
    gate = asyncio.Event()

    class GatedEngine(BuiltinEngine):
        async def scope(self, *args: Any, **kwargs: Any) -> list[str]:
            await gate.wait()  # start only once every subscriber is connected
            return await super().scope(*args, **kwargs)

    runtime.jobs.engine_factory = GatedEngine
    try:
        job = await runtime.jobs.submit(questions(dataset, 1)[0])
        url = f"http://127.0.0.1:{port}/api/research/deep/{job.id}"
        shares = [count // procs + (i < count % procs) for i in range(procs)]
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--client", url, str(n), stdout=subprocess.PIPE
            )
            for n in shares
            if n
        ]
        while runtime.jobs.hub.subscriber_count(job.id) < count:  # noqa: ASYNC110 (polling a count)
            await asyncio.sleep(0.05)
        gate.set()
        outputs = [(await child.communicate())[0] for child in children]
        final = await runtime.jobs.wait(job.id)
        events = await runtime.jobs.store.events(job.id)
    finally:
        await runner.cleanup()
    received = [r for out in outputs for r in json.loads(out)]
    expected = [e.id for e in events]
    complete = sum(r["ids"] == expected for r in received)
    live = [lat for r in received for i, lat in zip(r["ids"], r["latencies"], strict=True) if i > 1]
    return {
        "subscribers": count,
        "events": len(expected),
        "status": final.status,
        "complete_streams": complete,
        "p50_ms": pct(live, 50),
        "p99_ms": pct(live, 99),
        "max_ms": max(live),
    }


async def compare_sse_writes(config: Any, paths: Any, args: argparse.Namespace) -> None:
    """Interleaved rounds of the two ways research SSE frames reach the socket, same run."""
    from localresearch.server.routes import research as research_routes

    seen: dict[str, list[dict[str, Any]]] = {"transport": [], "response": []}
    for _ in range(args.sse_writes):
        for mode in ("transport", "response"):
            research_routes.SSE_WRITES = mode
            procs = min(args.subscribers, args.client_procs)
            result = await bench_subscribers(config, paths, args.dataset, args.subscribers, procs)
            seen[mode].append(result)
            print(
                f"{mode:9} {args.subscribers} subscribers: p50 {result['p50_ms']:.1f} ms, "
                f"p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms, "
                f"{result['complete_streams']}/{args.subscribers} complete",
                flush=True,
            )
    for mode, results in seen.items():
        p50 = statistics.median(r["p50_ms"] for r in results)
        p99 = statistics.median(r["p99_ms"] for r in results)
        print(f"{mode:9} median of {len(results)} rounds: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


# -- research sessions ------------------------------------------------------------------------


async def _serve(config: Any, paths: Any) -> tuple[Any, Any, int]:
    from aiohttp import web

    from localresearch.server.app import make_app
    from localresearch.server.keys import RUNTIME

    port = free_port()
    app = make_app(config, paths, port=port)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    runtime = app[RUNTIME]
    await runtime.wait_started()
    await runtime.memory.wait_ready()
    return runner, runtime, port


async def _call(http: Any, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as response:
        payload = await response.json()
        assert payload.get("success"), payload
        return payload["data"]


async def _prepare(http: Any, base: str, topic: str) -> str:
    """A session up to its plan: create → questions → feedback → plan."""
    session = (await _call(http, "POST", base, {"settings": {"provider": "builtin"}}))["sessionId"]
    await _call(http, "POST", f"{base}/{session}/questions", {"topic": topic})
    answer = {"feedback": "Focus on clinical evidence in humans; a short overview"}
    await _call(http, "POST", f"{base}/{session}/feedback", answer)
    await _call(http, "POST", f"{base}/{session}/plan")
    return str(session)


async def bench_session_flow(config: Any, paths: Any, dataset: Path, topics: int) -> dict[str, Any]:
    import aiohttp

    runner, runtime, port = await _serve(config, paths)
    base = f"http://127.0.0.1:{port}/api/research/sessions"
    flows: list[float] = []
    jobs: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            for topic in questions(dataset, topics + 1)[1:]:
                start = time.perf_counter()
                session = await _prepare(http, base, topic)
                done = await _call(http, "POST", f"{base}/{session}/execute")
                assert done["phase"] == "completed", done
                await _call(http, "GET", f"{base}/{session}/results")
                flows.append(time.perf_counter() - start)
                start = time.perf_counter()
                job = await runtime.jobs.submit(topic)
                final = await runtime.jobs.wait(job.id)
                assert final.status == "complete", final.error
                jobs.append(time.perf_counter() - start)
    finally:
        await runner.cleanup()
    return {
        "flow_median_s": statistics.median(flows),
        "flow_max_s": max(flows),
        "job_median_s": statistics.median(jobs),
        "topics": topics,
    }


async def bench_session_stream(
    config: Any, paths: Any, dataset: Path, count: int, procs: int
) -> dict[str, Any]:
    import aiohttp

    runner, runtime, port = await _serve(config, paths)
    service = runtime.research_sessions
    base = f"http://127.0.0.1:{port}/api/research/sessions"
    # Where the delay arises, on the daemon's side: from the event's stamp (inside its SQLite
    # transaction) to the fan-out's start (commit, back on the event loop), and the fan-out
    # itself (one encoded frame written to every subscriber's transport).
    to_fanout: list[float] = []
    fanout_ms: list[float] = []
    publish = service.fanout.publish

    def timed_publish(session_id: str, event: Any) -> None:
        stamp = datetime.fromisoformat(event.data["timestamp"]).timestamp()
        watched = service.fanout.count(session_id) > 0  # the events the clients time
        start = time.time()
        publish(session_id, event)
        if watched:
            to_fanout.append((start - stamp) * 1000)
            fanout_ms.append((time.time() - start) * 1000)

    service.fanout.publish = timed_publish
    try:
        async with aiohttp.ClientSession() as http:
            session = await _prepare(http, base, questions(dataset, 1)[0])
            after = (await service.store.get(session)).last_event_id
            url = f"{base}/{session}/stream"
            shares = [count // procs + (i < count % procs) for i in range(procs)]
            children = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--client",
                    url,
                    str(n),
                    str(after),
                    stdout=subprocess.PIPE,
                )
                for n in shares
                if n
            ]
            while service.subscriber_count(session) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            done = await _call(http, "POST", f"{base}/{session}/execute")
            assert done["phase"] == "completed"
            outputs = [(await child.communicate())[0] for child in children]
            events = await service.store.events(session, after)
    finally:
        await runner.cleanup()
    received = [r for out in outputs for r in json.loads(out)]
    expected = [e.id for e in events]
    complete = sum(r["ids"] == expected for r in received)
    delays = [lat for r in received for lat in r["latencies"]]
    return {
        "subscribers": count,
        "events": len(expected),
        "complete_streams": complete,
        "p50_ms": pct(delays, 50),
        "p99_ms": pct(delays, 99),
        "max_ms": max(delays),
        "to_fanout_p50_ms": pct(to_fanout, 50),
        "to_fanout_p99_ms": pct(to_fanout, 99),
        "fanout_p50_ms": pct(fanout_ms, 50),
        "fanout_p99_ms": pct(fanout_ms, 99),
    }


async def report_sessions(args: Any, config: Any, paths: Any) -> None:
    flow = await bench_session_flow(config, paths, args.dataset, args.session_topics)
    print(
        f"research session flow over HTTP (create → questions → feedback → plan → execute → "
        f"results), {flow['topics']} topics: median {flow['flow_median_s']:.3f} s, max "
        f"{flow['flow_max_s']:.3f} s   (target <= 3 s);  baseline, a research deep job on the "
        f"same topic: median {flow['job_median_s']:.3f} s"
    )
    for count in (1, args.stream_subscribers):
        procs = min(count, args.client_procs)
        result = await bench_session_stream(config, paths, args.dataset, count, procs)
        print(
            f"{count} /stream subscriber(s), {result['events']} events: p50 "
            f"{result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, max "
            f"{result['max_ms']:.1f} ms; {result['complete_streams']}/{count} streams complete"
            + ("" if count == 1 else "   (target p99 <= 100 ms)")
        )
        print(
            f"  daemon side: stamped → fan-out start p50 {result['to_fanout_p50_ms']:.1f} ms, "
            f"p99 {result['to_fanout_p99_ms']:.1f} ms; the fan-out itself p50 "
            f"{result['fanout_p50_ms']:.2f} ms, p99 {result['fanout_p99_ms']:.2f} ms"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--docs", type=int, default=0, help="Index only this many (0: all).")
    parser.add_argument("--client-procs", type=int, default=2, help="Subscriber processes.")
    parser.add_argument(
        "--sse-writes",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="Only compare research SSE written on the transport with aiohttp's "
        "StreamResponse.write: ROUNDS interleaved rounds of --subscribers each.",
    )
    parser.add_argument("--stream-subscribers", type=int, default=200)
    parser.add_argument("--session-topics", type=int, default=5)
    parser.add_argument("--sessions-only", action="store_true", help="Only parts 4 and 5.")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-research-"))
    os.environ["LOCALRESEARCH_HOME"] = str(tmp / "home")
    from localresearch.config import load_config
    from localresearch.paths import resolve_paths
    from localresearch.runtime import Runtime

    paths = resolve_paths()
    paths.ensure()
    docs = write_corpus(args.dataset, tmp / "corpus", args.docs)
    paths.config_file.write_text(
        f'[memory]\npaths = ["{tmp / "corpus"}"]\nwatch = false\n', encoding="utf-8"
    )
    config = load_config(paths.config_file)
    runtime = Runtime(config, paths)
    start = time.perf_counter()
    await runtime.start()
    await runtime.memory.wait_ready()
    index_s = time.perf_counter() - start
    print(f"corpus: {docs} documents, indexed in {index_s:.1f} s (not part of the job timings)")
    if args.sse_writes:
        await runtime.stop()
        await compare_sse_writes(config, paths, args)
        return
    if args.sessions_only:
        await runtime.stop()
        await report_sessions(args, config, paths)
        return
    try:
        jobs = await bench_jobs(runtime, args.dataset, args.jobs)
    finally:
        await runtime.stop()
    print(
        f"one job (defaults: {config.research.dimensions} dimensions, "
        f"{config.research.max_rounds} rounds): median {jobs['single_job_s']['median']:.3f} s, "
        f"max {jobs['single_job_s']['max']:.3f} s   (target <= 2 s)"
    )
    print(
        f"  baseline: its {jobs['baseline_searches_s']['searches']} memory searches alone: "
        f"{jobs['baseline_searches_s']['median']:.3f} s"
    )
    print(
        f"{jobs['jobs']} jobs submitted at once (max_concurrent_jobs="
        f"{jobs['max_concurrent_jobs']}): {jobs['concurrent_s']:.2f} s;  baseline, one after "
        f"another: {jobs['sequential_s']:.2f} s"
    )
    for count in (1, args.subscribers):
        procs = min(count, args.client_procs)
        result = await bench_subscribers(config, paths, args.dataset, count, procs)
        print(
            f"{count} SSE subscriber(s), {result['events']} events: p50 {result['p50_ms']:.1f} ms, "
            f"p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms; "
            f"{result['complete_streams']}/{count} streams complete and in order"
            + ("" if count == 1 else "   (target p99 <= 100 ms, nothing lost)")
        )
    await report_sessions(args, config, paths)


if __name__ == "__main__":
    if len(sys.argv) in (4, 5) and sys.argv[1] == "--client":
        asyncio.run(
            run_clients(
                sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) == 5 else 0
            )
        )
    else:
        asyncio.run(main())
