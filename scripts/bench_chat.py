"""Chat streaming benchmark: the latency the daemon adds between a provider and the CLI.

    python scripts/bench_chat.py [--runs 200] [--chunks 40] [--concurrent 200]

A paced model server (its own process, OpenAI-compatible SSE: first token after --first-ms,
then one chunk every --every-ms) stamps every chunk with the time it sent it
(time.perf_counter is CLOCK_MONOTONIC, one clock for all processes on Linux). In one run,
interleaved:
- direct: the `openai` provider called in this process, as a library user would;
- daemon: a real daemon (`research daemon start`) configured with the same provider, reached
          through POST /api/chat/stream by localresearch.client.Client, the blocking client
          the CLI uses: a new Client (so a new connection) per chat, as `research ask` does;
- kept-alive: one Client for all chats (its connection kept alive), as a long-lived script
          using the Python API would.
"Added TTFT" is p50 daemon TTFT minus p50 direct TTFT; "per-chunk delay" is arrival time minus
the model server's send time. A GET /health after the same idle gap (new connection) shows the
floor any HTTP hop pays on this machine. Then --concurrent chats stream at once (aiohttp) and
every chunk sequence is checked: nothing lost, nothing reordered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def parse_chunk(text: str) -> tuple[str, int, float]:
    """(tag, index, time sent) from a paced chunk "<tag>:<i>@<perf_counter> "."""
    head, _, stamp = text.strip().partition("@")
    tag, _, index = head.rpartition(":")
    return tag, int(index), float(stamp)


def model_server(port: int, chunks: int, first: float, every: float) -> None:
    """--model-server: an OpenAI-compatible /v1/chat/completions that streams paced chunks."""
    from aiohttp import web

    def frame(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        obj = {"id": "bench", "object": "chat.completion.chunk", "choices": [choice]}
        return f"data: {json.dumps(obj)}\n\n".encode()

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        tag = body["messages"][-1]["content"]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(frame({"role": "assistant", "content": ""}))
        await asyncio.sleep(first)
        for i in range(chunks):
            if i:
                await asyncio.sleep(every)
            await response.write(frame({"content": f"{tag}:{i}@{time.perf_counter():.9f} "}))
        await response.write(frame({}, "stop"))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "paced"}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/v1/models", models)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def direct_run(provider: Any, tag: str) -> tuple[float, list[float]]:
    from localresearch.providers.base import ChatRequest, Message, TextChunk

    began = time.perf_counter()
    ttft = 0.0
    delays = []
    expected = 0
    async for item in provider.stream(ChatRequest(messages=[Message("user", tag)])):
        if isinstance(item, TextChunk):
            now = time.perf_counter()
            ttft = ttft or now - began
            got_tag, index, stamp = parse_chunk(item.text)
            assert (got_tag, index) == (tag, expected)
            expected += 1
            delays.append(now - stamp)
    return ttft, delays


def daemon_run(client: Any, tag: str, include_memory: bool) -> tuple[float, list[float]]:
    """One chat through the daemon; `client` is a Client, or its URL for a new one (timed)."""
    from localresearch.client import Client

    began = time.perf_counter()
    if isinstance(client, str):
        client = Client(client, timeout=60)
    ttft = 0.0
    delays = []
    expected = 0
    for event in client.chat_stream(tag, include_memory=include_memory):
        if event.type == "delta":
            now = time.perf_counter()
            ttft = ttft or now - began
            got_tag, index, stamp = parse_chunk(event.data["text"])
            assert (got_tag, index) == (tag, expected), (got_tag, index, expected)
            expected += 1
            delays.append(now - stamp)
        elif event.type == "error":
            raise RuntimeError(event.data)
    return ttft, delays


async def concurrent_chats(url: str, n: int, chunks: int) -> tuple[float, int, list[float]]:
    import aiohttp

    from localresearch.client import parse_sse

    lost = 0
    delays: list[float] = []

    async def one(i: int, session: aiohttp.ClientSession) -> None:
        nonlocal lost
        tag = f"c{i}"
        got: list[str] = []
        body = {"message": tag, "include_memory": False}
        async with session.post(f"{url}/api/chat/stream", json=body) as resp:
            async for line in resp.content:
                for event in parse_sse([line, b"\n"]):
                    if event.type == "delta":
                        got_tag, index, stamp = parse_chunk(event.data["text"])
                        delays.append(time.perf_counter() - stamp)
                        got.append(f"{got_tag}:{index}")
        if got != [f"{tag}:{k}" for k in range(chunks)]:
            lost += 1

    began = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(one(i, session) for i in range(n)))
    return time.perf_counter() - began, lost, delays


async def concurrent_direct(provider: Any, n: int, chunks: int) -> tuple[float, int, list[float]]:
    """The same load straight from the provider (the model server's own share of the delay)."""
    lost = 0
    delays: list[float] = []

    async def one(i: int) -> None:
        nonlocal lost
        try:
            _, got = await direct_run(provider, f"x{i}")
        except AssertionError:
            lost += 1
            return
        delays.extend(got)
        if len(got) != chunks:
            lost += 1

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - began, lost, delays


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(value: float) -> str:
    return f"{value * 1000:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="sequential chats per path")
    parser.add_argument("--chunks", type=int, default=40, help="chunks per answer")
    parser.add_argument("--first-ms", type=float, default=5.0, help="model's time to first token")
    parser.add_argument("--every-ms", type=float, default=1.0, help="time between chunks")
    parser.add_argument("--concurrent", type=int, default=200, help="simultaneous streaming chats")
    parser.add_argument("--include-memory", action="store_true", help="retrieve memory context")
    parser.add_argument(
        "--asyncio-loop", action="store_true", help="the daemon on asyncio's loop, not uvloop"
    )
    parser.add_argument("--model-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model_server:
        model_server(args.model_server, args.chunks, args.first_ms / 1000, args.every_ms / 1000)
        return

    model_port, daemon_port = free_port(), free_port()
    pace = ["--chunks", str(args.chunks), "--first-ms", str(args.first_ms)]
    pace += ["--every-ms", str(args.every_ms)]
    model = subprocess.Popen([sys.executable, __file__, "--model-server", str(model_port), *pace])
    home = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALRESEARCH_")}
    env.update(LOCALRESEARCH_HOME=str(home), LOCALRESEARCH_SERVER__PORT=str(daemon_port))
    os.environ.update(env)
    base_url = f"http://127.0.0.1:{model_port}/v1"
    (home / "config.toml").write_text(
        f'[llm]\nprovider = "openai"\nbase_url = "{base_url}"\nmodel = "paced"\n'
        "[heartbeat]\nenabled = false\n[memory]\nwatch = false\n[server]\nlog_level = "
        f'"warning"\nuvloop = {str(not args.asyncio_loop).lower()}\n',
        encoding="utf-8",
    )
    research = [sys.executable, "-m", "localresearch"]
    try:
        wait_healthy(f"{base_url}/models")
        subprocess.run([*research, "daemon", "start"], env=env, check=True, capture_output=True)
        run(args, daemon_port)
    finally:
        subprocess.run([*research, "daemon", "stop"], env=env, capture_output=True)
        model.terminate()
        model.wait(10)


def run(args: argparse.Namespace, port: int) -> None:
    from localresearch.client import Client
    from localresearch.config import load_config
    from localresearch.paths import resolve_paths
    from localresearch.providers.registry import create_provider

    provider = create_provider(load_config(resolve_paths().config_file).llm)
    url = f"http://127.0.0.1:{port}"
    kept = Client(url, timeout=60)
    loop = asyncio.new_event_loop()
    for i in range(10):  # warm-up every path
        loop.run_until_complete(direct_run(provider, f"w{i}"))
        daemon_run(url, f"wd{i}", args.include_memory)
        daemon_run(kept, f"wk{i}", args.include_memory)

    direct_ttft, direct_delay, daemon_ttft, daemon_delay, health = [], [], [], [], []
    kept_ttft: list[float] = []
    rng = random.Random(0)
    for i in range(args.runs):  # interleaved so drift hits every path alike
        t, d = loop.run_until_complete(direct_run(provider, f"d{i}"))
        direct_ttft.append(t)
        direct_delay.extend(d)
        # A new Client per chat (as `research ask`) and the kept-alive one, in random order,
        # each after the same idle gap (a direct chat), so neither always comes first.
        for j, path in enumerate(rng.sample(("new", "kept"), 2)):
            if j:
                loop.run_until_complete(direct_run(provider, f"x{i}"))
            if path == "kept":
                t, _ = daemon_run(kept, f"k{i}", args.include_memory)
                kept_ttft.append(t)
            else:
                t, d = daemon_run(url, f"h{i}", args.include_memory)  # a new Client
                daemon_ttft.append(t)
                daemon_delay.extend(d)
        # The floor any HTTP daemon pays here: GET /health after the same idle gap.
        loop.run_until_complete(direct_run(provider, f"g{i}"))
        began = time.perf_counter()
        Client(url, timeout=60).get("/health")
        health.append(time.perf_counter() - began)
    kept.close()
    direct_load = loop.run_until_complete(concurrent_direct(provider, args.concurrent, args.chunks))
    loop.run_until_complete(provider.close())
    loop.close()

    print(f"model: first token {args.first_ms} ms, {args.chunks} chunks every {args.every_ms} ms")
    print(f"daemon event loop: {'asyncio' if args.asyncio_loop else 'uvloop (where installed)'}")
    print(f"{args.runs} sequential chats per path, include_memory={args.include_memory}\n")
    print(f"{'':30}{'p50':>12}{'p90':>12}{'p99':>12}")
    for name, values in (
        ("TTFT direct", direct_ttft),
        ("TTFT via daemon", daemon_ttft),
        ("TTFT via daemon, kept-alive", kept_ttft),
        ("per-chunk delay direct", direct_delay),
        ("per-chunk delay via daemon", daemon_delay),
        ("GET /health (new connection)", health),
    ):
        print(f"{name:30}" + "".join(f"{ms(pct(values, q)):>12}" for q in (0.5, 0.9, 0.99)))
    added = statistics.median(daemon_ttft) - statistics.median(direct_ttft)
    verdict = "OK" if added <= 0.002 else "ABOVE TARGET"
    print(f"\nadded TTFT (p50 daemon - p50 direct): {ms(added)}  (target <= 2 ms: {verdict})")
    beyond = added - statistics.median(health)
    print(f"added TTFT beyond one idle HTTP round trip (p50 /health): {ms(beyond)}")
    kept_added = statistics.median(kept_ttft) - statistics.median(direct_ttft)
    print(f"added TTFT with a kept-alive Client (long-lived Python API user): {ms(kept_added)}")

    via_daemon = asyncio.run(
        concurrent_chats(f"http://127.0.0.1:{port}", args.concurrent, args.chunks)
    )
    total = args.concurrent * args.chunks
    print(f"\n{args.concurrent} concurrent streaming chats, {total} chunks:")
    lost = 0
    for name, (elapsed, missing, delays) in (("direct", direct_load), ("via daemon", via_daemon)):
        lost += missing
        print(
            f"  {name:11} {elapsed:5.2f} s ({total / elapsed:,.0f} chunks/s), per-chunk delay "
            f"p50 {ms(pct(delays, 0.5))}, p99 {ms(pct(delays, 0.99))}, "
            f"streams with lost or reordered chunks: {missing}"
        )
    if lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
