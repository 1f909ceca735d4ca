"""Web search for research jobs (off by default): SearXNG, Tavily, Brave, Serper and Exa, with
page fetching and readable-text extraction so a source's passage is the page, not a snippet."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp

from localresearch import extractive
from localresearch.config.schema import ResearchConfig
from localresearch.errors import InvalidRequest, ProviderError
from localresearch.memory.extract import html_blocks
from localresearch.providers.registry import resolve_api_key
from localresearch.research.types import Source

log = logging.getLogger(__name__)

MAX_PAGE_BYTES = 2_000_000
PASSAGE_CHARS = 1500
FETCH_CONCURRENCY = 4


@dataclass(frozen=True)
class WebHit:
    title: str
    url: str
    snippet: str


class SearchAPI:
    """One search service: how to ask it, and where its results are in the reply."""

    name: ClassVar[str]
    default_url: ClassVar[str] = ""
    needs_key: ClassVar[bool] = True

    def __init__(self, base_url: str, key: str | None) -> None:
        self.base_url = (base_url or self.default_url).rstrip("/")
        self.key = key
        if not self.base_url:
            raise InvalidRequest(f"research.web_search_url is required for {self.name}")
        if self.needs_key and not key:
            raise InvalidRequest(
                f"web search {self.name!r} needs an API key: set research.web_search_key_env "
                "to the name of an environment variable holding it"
            )

    async def search(self, session: aiohttp.ClientSession, query: str, limit: int) -> list[WebHit]:
        raise NotImplementedError

    async def _json(self, response: aiohttp.ClientResponse) -> Any:
        if response.status >= 400:
            text = (await response.text(errors="replace"))[:200]
            raise ProviderError(f"{self.name} search failed: HTTP {response.status} {text}")
        try:
            return await response.json(content_type=None)
        except ValueError:
            raise ProviderError(f"{self.name} search returned malformed JSON") from None


def _hits(items: Any, title: str, url: str, snippet: str) -> list[WebHit]:
    found: list[WebHit] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get(url), str):
            found.append(
                WebHit(str(item.get(title) or item[url]), item[url], str(item.get(snippet) or ""))
            )
    return found


class SearXNG(SearchAPI):
    """Self-hosted, key-free: GET /search?q=…&format=json (JSON must be enabled on the instance)."""

    name = "searxng"
    needs_key = False

    async def search(self, session: aiohttp.ClientSession, query: str, limit: int) -> list[WebHit]:
        params = {"q": query, "format": "json"}
        async with session.get(f"{self.base_url}/search", params=params) as response:
            data = await self._json(response)
        return _hits(data.get("results"), "title", "url", "content")[:limit]


class Tavily(SearchAPI):
    name = "tavily"
    default_url = "https://api.tavily.com"

    async def search(self, session: aiohttp.ClientSession, query: str, limit: int) -> list[WebHit]:
        body = {"query": query, "max_results": limit, "search_depth": "basic"}
        headers = {"Authorization": f"Bearer {self.key}"}
        async with session.post(f"{self.base_url}/search", json=body, headers=headers) as response:
            data = await self._json(response)
        return _hits(data.get("results"), "title", "url", "content")[:limit]


class Brave(SearchAPI):
    name = "brave"
    default_url = "https://api.search.brave.com"

    async def search(self, session: aiohttp.ClientSession, query: str, limit: int) -> list[WebHit]:
        headers = {"X-Subscription-Token": self.key or "", "Accept": "application/json"}
        params = {"q": query, "count": str(min(limit, 20))}
        url = f"{self.base_url}/res/v1/web/search"
        async with session.get(url, params=params, headers=headers) as response:
            data = await self._json(response)
        web = data.get("web") if isinstance(data, dict) else None
        results = web.get("results") if isinstance(web, dict) else None
        return _hits(results, "title", "url", "description")[:limit]


class Serper(SearchAPI):
    name = "serper"
    default_url = "https://google.serper.dev"

    async def search(self, session: aiohttp.ClientSession, query: str, limit: int) -> list[WebHit]:
        headers = {"X-API-KEY": self.key or ""}
        body = {"q": query, "num": limit}
        async with session.post(f"{self.base_url}/search", json=body, headers=headers) as response:
            data = await self._json(response)
        return _hits(data.get("organic"), "title", "link", "snippet")[:limit]


class Exa(SearchAPI):
    name = "exa"
    default_url = "https://api.exa.ai"

    async def search(self, session: aiohttp.ClientSession, query: str, limit: int) -> list[WebHit]:
        headers = {"x-api-key": self.key or ""}
        body = {"query": query, "numResults": limit, "contents": {"text": True}}
        async with session.post(f"{self.base_url}/search", json=body, headers=headers) as response:
            data = await self._json(response)
        return _hits(data.get("results"), "title", "url", "text")[:limit]


APIS: dict[str, type[SearchAPI]] = {api.name: api for api in (SearXNG, Tavily, Brave, Serper, Exa)}


def readable_text(html: str) -> str:
    """The page's prose: paragraphs and headings, without scripts, styles and menu crumbs."""
    kept: list[str] = []
    for block in html_blocks(html):
        if block.level or len(block.text.split()) >= 6:
            kept.append(block.text)
    return "\n\n".join(kept)


def best_passage(text: str, query: str, limit: int = PASSAGE_CHARS) -> str:
    """The paragraphs of a page that best match the query, in page order, within `limit`."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    if not paragraphs:
        return ""
    wanted = set(extractive.query_terms(query))
    scored = sorted(
        range(len(paragraphs)),
        key=lambda i: (-len(wanted & set(extractive.terms(paragraphs[i]))), i),
    )
    chosen: list[int] = []
    size = 0
    for i in scored:
        if size + len(paragraphs[i]) > limit and chosen:
            continue
        chosen.append(i)
        size += len(paragraphs[i]) + 2
        if size >= limit:
            break
    return "\n\n".join(paragraphs[i] for i in sorted(chosen))[:limit]


class WebSearch:
    """Search, then fetch each result page and keep its most relevant readable text."""

    def __init__(self, api: SearchAPI, *, timeout: float = 15.0, fetch_pages: bool = True) -> None:
        self.api = api
        self.timeout = timeout
        self.fetch_pages = fetch_pages
        self._session: aiohttp.ClientSession | None = None
        self._fetch_limit = asyncio.Semaphore(FETCH_CONCURRENCY)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "localresearch (+https://github.com/localresearch)"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def search(self, query: str, limit: int) -> list[Source]:
        try:
            hits = await self.api.search(self._client(), query, limit)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderError(f"{self.api.name} search failed: {type(exc).__name__}") from None
        pages = await asyncio.gather(*(self._page(hit, query) for hit in hits))
        return [self._source(hit, page) for hit, page in zip(hits, pages, strict=True)]

    def _source(self, hit: WebHit, page: str) -> Source:
        passage = page or hit.snippet
        return Source(
            id=Source.make_id(hit.url, passage),
            title=hit.title,
            location=hit.url,
            url=hit.url,
            passage=passage,
            kind="web",
        )

    async def _page(self, hit: WebHit, query: str) -> str:
        """Readable text of the page, or '' (then the snippet stands in): never fails a job."""
        if not self.fetch_pages or urlsplit(hit.url).scheme not in ("http", "https"):
            return ""
        async with self._fetch_limit:
            try:
                async with self._client().get(hit.url) as response:
                    kind = response.headers.get("Content-Type", "")
                    if response.status >= 400 or not kind.startswith(("text/html", "text/plain")):
                        return ""
                    raw = await response.content.read(MAX_PAGE_BYTES)
                    charset = response.charset or "utf-8"
            except (aiohttp.ClientError, TimeoutError, UnicodeError) as exc:
                log.info("could not fetch %s: %s", hit.url, type(exc).__name__)
                return ""
        text = raw.decode(charset, errors="replace")
        if kind.startswith("text/html"):
            text = await asyncio.to_thread(readable_text, text)
        return best_passage(text, query)


def create_web_searcher(config: ResearchConfig) -> WebSearch | None:
    """The configured web search, or None when `research.web_search` is "none"."""
    name = config.web_search.strip().lower()
    if name in ("", "none"):
        return None
    api = APIS.get(name)
    if api is None:
        known = ", ".join(["none", *APIS])
        raise InvalidRequest(f"Unknown research.web_search {name!r} (choose from {known})")
    return WebSearch(api(config.web_search_url, resolve_api_key(config.web_search_key_env)))
