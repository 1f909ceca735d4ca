"""The page in Chromium: first paint of `/` and search-as-you-type latency, with baselines.

    python scripts/bench_web.py [--loads 9] [--queries 30] [--full]

A real daemon over SciFact (a ~170-abstract subset, or the whole corpus with --full) and the
system Chromium driven by Playwright. Baselines measured in the same run:
- first paint: a one-line page the browser gets with no network at all (the browser's floor),
  and the same page files served by a bare aiohttp app (no guard, no middleware: the daemon's
  own share of the time is the difference);
- search: the same `/api/memory/search` request made with a bare fetch from the page, without
  rendering (the daemon's and the network's share of the time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.search_scifact import SCIFACT, write_corpus  # noqa: E402

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FCP = """() => new Promise((resolve) => {
  const found = performance.getEntriesByName("first-contentful-paint")[0];
  if (found) return resolve(found.startTime);
  new PerformanceObserver((l) => resolve(l.getEntries()[0].startTime))
    .observe({ type: "paint", buffered: true });
})"""
BARE_FETCH = """async (q) => {
  const t = performance.now();
  await (await fetch(`/api/memory/search?${new URLSearchParams({ q, limit: "20" })}`)).json();
  return performance.now() - t;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_server() -> tuple[str, threading.Event]:
    """The page's files from a bare aiohttp app in a thread, with the daemon's cache headers."""
    from aiohttp import web

    from localresearch.server.routes.web import _asset, _index, bundle_version

    async def index(_request: web.Request) -> web.Response:
        return web.Response(body=_index(), content_type="text/html", charset="utf-8")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        kind = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
        body = _asset(name) or b""
        cache = "public, max-age=31536000, immutable"
        if request.match_info["version"] != bundle_version():
            cache = "no-cache"
        return web.Response(
            body=body,
            content_type=kind[name.rsplit(".", 1)[1]],
            headers={"Cache-Control": cache},
        )

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/static/{version}/{name}", static)
    port = free_port()
    stop = threading.Event()

    async def serve() -> None:
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return f"http://127.0.0.1:{port}", stop


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=9)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--full", action="store_true", help="index the whole SciFact corpus")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    static = resources.files("localresearch.web").joinpath("static")
    weight = sum(
        len(static.joinpath(p.name).read_bytes())
        for p in static.iterdir()
        if p.name.endswith((".js", ".css"))
    )
    home = Path(tempfile.mkdtemp(prefix="bench-web-"))
    corpus = home / "corpus"
    docs = write_corpus(corpus, full=args.full)
    home.joinpath("config.toml").write_text(
        f"[memory]\npaths = [{json.dumps(str(corpus))}]\nwatch = false\n", encoding="utf-8"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALRESEARCH_")}
    env.update(LOCALRESEARCH_HOME=str(home), LOCALRESEARCH_SERVER__PORT=str(port))
    env["LOCALRESEARCH_HEARTBEAT__ENABLED"] = "false"
    research = [sys.executable, "-m", "localresearch"]
    subprocess.run([*research, "daemon", "start"], env=env, check=True, capture_output=True)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:  # the first indexing pass must be over: it would slow everything down
            with urllib.request.urlopen(f"{url}/api/memory/stats", timeout=30) as r:
                if json.loads(r.read())["index"]["last_indexed"]:
                    break
            time.sleep(0.2)
        queries = [
            json.loads(line)["text"]
            for line in (SCIFACT / "queries.jsonl").read_text().splitlines()[: args.queries]
        ]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{url}/")  # warm the browser and the daemon once
            ours, blank = [], []
            for n in range(args.loads):
                page.goto(f"{url}/?n={n}")
                ours.append(page.evaluate(FCP))
            bare_url, bare_stop = bare_server()
            plain = browser.new_page(viewport={"width": 1280, "height": 800})
            plain.goto(f"{bare_url}/")  # warmed the same way
            served = []
            for n in range(args.loads):
                plain.goto(f"{bare_url}/?n={n}")
                served.append(plain.evaluate(FCP))
            plain.close()
            bare_stop.set()
            cold = []  # a first visit: a new context has an empty cache
            for _ in range(args.loads):
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                fresh = context.new_page()
                fresh.goto(f"{url}/")
                cold.append(fresh.evaluate(FCP))
                context.close()
            # In a page of its own: routing a request turns the browser's cache off.
            other = browser.new_page(viewport={"width": 1280, "height": 800})
            other.route(
                "http://baseline.test/**",
                lambda route, _req: route.fulfill(body="<p>x</p>", content_type="text/html"),
            )
            for n in range(args.loads):
                other.goto(f"http://baseline.test/?n={n}")
                blank.append(other.evaluate(FCP))
            other.close()
            blank_cold = []  # the blank page in a new context: a first visit's own floor
            for n in range(args.loads):
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                fresh = context.new_page()
                fresh.route(
                    "http://baseline.test/**",
                    lambda route, _req: route.fulfill(body="<p>x</p>", content_type="text/html"),
                )
                fresh.goto(f"http://baseline.test/?n={n}")
                blank_cold.append(fresh.evaluate(FCP))
                context.close()
            page.goto(f"{url}/#memory")
            page.wait_for_selector("#stats dd")
            shown, bare = [], []
            for q in queries:
                page.fill("#search", q)
                page.wait_for_function(
                    "(q) => document.querySelector('#results').dataset.query === q", arg=q
                )
                shown.append(float(page.get_attribute("#results", "data-ms") or "nan"))
                bare.append(page.evaluate(BARE_FETCH, q))
            browser.close()
    finally:
        subprocess.run([*research, "daemon", "stop"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"SciFact documents: {docs}; load average at the end: {load:.1f}")
    print(f"page JS+CSS: {weight / 1024:.1f} KB (limit 300 KB)")
    print(
        f"first paint of /: median {statistics.median(ours):.0f} ms, p90 {pct(ours, 0.9):.0f} ms"
        f" | first visit (empty cache): median {statistics.median(cold):.0f} ms"
        f" (blank page in a new context: {statistics.median(blank_cold):.0f} ms)"
        f" | same files from a bare aiohttp app: median {statistics.median(served):.0f} ms"
        f" | blank page (same run): median {statistics.median(blank):.0f} ms"
        f" | {args.loads} loads (limit 300 ms)"
    )
    print(
        f"search, debounce to results drawn: median {statistics.median(shown):.1f} ms, "
        f"p90 {pct(shown, 0.9):.1f} ms, max {max(shown):.1f} ms"
        f" | bare fetch (same run): median {statistics.median(bare):.1f} ms"
        f" | {len(queries)} SciFact queries (limit 100 ms)"
    )


if __name__ == "__main__":
    main()
