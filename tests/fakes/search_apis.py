"""Local servers answering like the web search APIs (their documented request and response
shapes), plus a small web site whose pages the research job fetches and reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

KEY = "test-key-123"

PAGE = """<!doctype html><html><head><title>B12 and homocysteine</title>
<style>body {{ color: red }}</style><script>var tracking = "do not read me";</script></head>
<body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
<h1>{title}</h1>
<p>Vitamin B12 deficiency impairs the remethylation of homocysteine to methionine, so plasma
homocysteine concentrations rise when B12 is lacking.</p>
<p>Supplementation with cobalamin lowers homocysteine levels in deficient adults within weeks.</p>
<footer>Copyright 2026</footer></body></html>
"""


@dataclass
class SearchFake:
    """Records what each API received; `pages` is the base URL of the fake web site."""

    pages: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_status: int | None = None

    def results(self) -> list[tuple[str, str, str]]:
        return [
            (f"B12 page {n}", f"{self.pages}/page/{n}", f"Snippet {n} about B12 and homocysteine.")
            for n in (1, 2)
        ] + [("Broken page", f"{self.pages}/missing", "Snippet of a page that is gone.")]

    def _record(self, request: web.Request, body: Any) -> None:
        self.requests.append(
            {"path": request.path, "query": dict(request.query), "headers": dict(request.headers),
             "body": body}
        )  # fmt: skip

    def _denied(self, request: web.Request, header: str, value: str) -> web.Response | None:
        if self.fail_status is not None:
            return web.json_response({"error": "upstream trouble"}, status=self.fail_status)
        if request.headers.get(header) != value:
            return web.json_response({"detail": {"error": "Unauthorized: missing key"}}, status=401)
        return None

    # -- SearXNG: GET /search?q=…&format=json ----------------------------------------------

    async def searxng(self, request: web.Request) -> web.Response:
        self._record(request, None)
        if request.query.get("format") != "json":
            return web.Response(status=403, text="Forbidden")  # JSON output disabled
        results = [
            {
                "url": url,
                "title": title,
                "content": snippet,
                "engine": "duckduckgo",
                "parsed_url": ["http", "127.0.0.1", "/page", "", "", ""],
                "template": "default.html",
                "engines": ["duckduckgo", "brave"],
                "positions": [n + 1],
                "score": 2.0 / (n + 1),
                "category": "general",
            }
            for n, (title, url, snippet) in enumerate(self.results())
        ]
        return web.json_response(
            {
                "query": request.query.get("q", ""),
                "number_of_results": 0,
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            }
        )

    # -- Tavily: POST /search, Authorization: Bearer ---------------------------------------

    async def tavily(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        denied = self._denied(request, "Authorization", f"Bearer {KEY}")
        if denied:
            return denied
        results = [
            {"title": t, "url": u, "content": s, "score": 0.9 - n / 10, "raw_content": None}
            for n, (t, u, s) in enumerate(self.results()[: body.get("max_results", 5)])
        ]
        return web.json_response(
            {
                "query": body["query"],
                "follow_up_questions": None,
                "answer": None,
                "images": [],
                "results": results,
                "response_time": 1.09,
            }
        )

    # -- Brave: GET /res/v1/web/search, X-Subscription-Token -------------------------------

    async def brave(self, request: web.Request) -> web.Response:
        self._record(request, None)
        denied = self._denied(request, "X-Subscription-Token", KEY)
        if denied:
            return denied
        results = [
            {
                "type": "search_result",
                "title": t,
                "url": u,
                "description": s,
                "is_source_local": False,
                "is_source_both": False,
                "language": "en",
                "family_friendly": True,
                "profile": {"name": "Example", "url": u, "long_name": "example.org"},
            }
            for t, u, s in self.results()
        ]
        return web.json_response(
            {
                "type": "search",
                "query": {"original": request.query.get("q", ""), "more_results_available": True},
                "mixed": {"type": "mixed", "main": [{"type": "web", "index": 0, "all": False}]},
                "web": {"type": "search", "results": results, "family_friendly": True},
            }
        )

    # -- Serper: POST /search, X-API-KEY ---------------------------------------------------

    async def serper(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        denied = self._denied(request, "X-API-KEY", KEY)
        if denied:
            return denied
        organic = [
            {"title": t, "link": u, "snippet": s, "position": n + 1}
            for n, (t, u, s) in enumerate(self.results())
        ]
        return web.json_response(
            {
                "searchParameters": {"q": body["q"], "type": "search", "engine": "google"},
                "organic": organic,
                "peopleAlsoAsk": [],
                "relatedSearches": [{"query": "b12 deficiency symptoms"}],
                "credits": 1,
            }
        )

    # -- Exa: POST /search, x-api-key ------------------------------------------------------

    async def exa(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        denied = self._denied(request, "x-api-key", KEY)
        if denied:
            return denied
        results = [
            {
                "id": u,
                "title": t,
                "url": u,
                "publishedDate": "2024-03-01T00:00:00.000Z",
                "author": None,
                "score": 0.2,
                "text": s,
            }
            for t, u, s in self.results()
        ]
        return web.json_response(
            {"requestId": "a78ebce717f4d712b6f8fe0d5d7753f8", "resolvedSearchType": "neural",
             "results": results, "costDollars": {"total": 0.005}}
        )  # fmt: skip

    def api_app(self, name: str) -> web.Application:
        app = web.Application()
        if name == "searxng":
            app.router.add_get("/search", self.searxng)
        elif name == "brave":
            app.router.add_get("/res/v1/web/search", self.brave)
        else:
            app.router.add_post("/search", getattr(self, name))
        return app


def site_app() -> web.Application:
    """Pages to fetch: readable HTML pages, a 404, and a binary file."""

    async def page(request: web.Request) -> web.Response:
        title = f"Cobalamin and homocysteine, part {request.match_info['n']}"
        return web.Response(text=PAGE.format(title=title), content_type="text/html")

    async def binary(request: web.Request) -> web.Response:
        return web.Response(body=b"\x00\x01PNG", content_type="image/png")

    app = web.Application()
    app.router.add_get("/page/{n}", page)
    app.router.add_get("/image.png", binary)
    return app
