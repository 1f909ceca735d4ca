"""Web search providers against local servers speaking each API's documented format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localresearch.config.schema import ResearchConfig
from localresearch.errors import InvalidRequest, ProviderError
from localresearch.research.websearch import APIS, WebSearch, create_web_searcher, readable_text
from localresearch.server.keys import RUNTIME
from tests.fakes.search_apis import KEY, PAGE, SearchFake, site_app
from tests.fakes.search_scifact import QUESTION, research_config, scifact_available, write_corpus


@pytest.fixture
async def fake(aiohttp_server: Any) -> SearchFake:
    site = await aiohttp_server(site_app())
    return SearchFake(pages=str(site.make_url("")).rstrip("/"))


async def _searcher(aiohttp_server: Any, fake: SearchFake, name: str, key: str | None) -> WebSearch:
    server = await aiohttp_server(fake.api_app(name))
    return WebSearch(APIS[name](str(server.make_url("")).rstrip("/"), key))


@pytest.mark.parametrize("name", ["searxng", "tavily", "brave", "serper", "exa"])
async def test_each_api_gives_sources_with_readable_page_text(
    name: str, fake: SearchFake, aiohttp_server: Any
) -> None:
    web = await _searcher(aiohttp_server, fake, name, None if name == "searxng" else KEY)
    try:
        sources = await web.search("vitamin B12 homocysteine", 3)
    finally:
        await web.close()
    assert [s.title for s in sources] == ["B12 page 1", "B12 page 2", "Broken page"]
    first = sources[0]
    assert first.kind == "web" and first.location == first.url == f"{fake.pages}/page/1"
    assert "remethylation of homocysteine" in first.passage  # the page, not the snippet
    assert "tracking" not in first.passage and "color: red" not in first.passage
    assert "Home About" not in first.passage
    assert sources[2].passage == "Snippet of a page that is gone."  # fetch failed: snippet
    assert len({s.id for s in sources}) == 3
    sent = fake.requests[0]
    if name == "searxng":
        assert sent["query"] == {"q": "vitamin B12 homocysteine", "format": "json"}
    elif name == "tavily":
        assert sent["headers"]["Authorization"] == f"Bearer {KEY}"
        assert sent["body"]["query"] == "vitamin B12 homocysteine"
        assert sent["body"]["max_results"] == 3
    elif name == "brave":
        assert sent["headers"]["X-Subscription-Token"] == KEY
        assert sent["query"]["q"] == "vitamin B12 homocysteine" and sent["query"]["count"] == "3"
    elif name == "serper":
        assert sent["headers"]["X-API-KEY"] == KEY and sent["body"]["q"]
    else:
        assert sent["headers"]["x-api-key"] == KEY
        assert sent["body"]["numResults"] == 3 and sent["body"]["contents"] == {"text": True}


@pytest.mark.parametrize("name", ["tavily", "brave", "serper", "exa"])
async def test_api_errors_are_clear_and_keep_the_key_secret(
    name: str, fake: SearchFake, aiohttp_server: Any
) -> None:
    web = await _searcher(aiohttp_server, fake, name, "wrong-key-xyz")
    try:
        with pytest.raises(ProviderError) as info:
            await web.search("anything", 3)
    finally:
        await web.close()
    assert f"{name} search failed: HTTP 401" in info.value.message
    assert "wrong-key-xyz" not in info.value.message


async def test_searxng_without_json_output_and_unreachable_servers(
    fake: SearchFake, aiohttp_server: Any
) -> None:
    server = await aiohttp_server(fake.api_app("searxng"))
    base = str(server.make_url("")).rstrip("/")

    class NoJSON(APIS["searxng"]):  # type: ignore[misc,valid-type]
        async def search(self, session: Any, query: str, limit: int) -> Any:
            async with session.get(f"{self.base_url}/search", params={"q": query}) as response:
                return await self._json(response)

    web = WebSearch(NoJSON(base, None))
    with pytest.raises(ProviderError, match="HTTP 403"):
        await web.search("q", 2)
    await web.close()
    web = WebSearch(APIS["searxng"]("http://127.0.0.1:9", None))
    with pytest.raises(ProviderError, match="searxng search failed"):
        await web.search("q", 2)
    await web.close()


def test_configuration_errors() -> None:
    assert create_web_searcher(ResearchConfig()) is None
    with pytest.raises(InvalidRequest, match=r"Unknown research\.web_search 'bing'"):
        create_web_searcher(ResearchConfig(web_search="bing"))
    with pytest.raises(InvalidRequest, match="web_search_url is required for searxng"):
        create_web_searcher(ResearchConfig(web_search="searxng"))
    with pytest.raises(InvalidRequest, match="needs an API key"):
        create_web_searcher(ResearchConfig(web_search="tavily", web_search_key_env="NOPE_X"))


def test_readable_text_keeps_prose_only() -> None:
    text = readable_text(PAGE.format(title="Title here"))
    assert text.startswith("Title here") or "Title here" in text
    assert "remethylation" in text and "tracking" not in text and "Copyright" not in text


@pytest.mark.skipif(not scifact_available(), reason="SciFact data set not present")
async def test_job_with_web_search_cites_web_pages(
    tmp_path: Path,
    write_config: Callable[[str], Path],
    make_client: Any,
    fake: SearchFake,
    aiohttp_server: Any,
) -> None:
    server = await aiohttp_server(fake.api_app("searxng"))
    corpus = tmp_path / "corpus"
    write_corpus(corpus, extra=30, queries=10)
    text = research_config(
        corpus,
        dimensions=2,
        max_rounds=0,
        web_search="searxng",
        web_search_url=str(server.make_url("")).rstrip("/"),
    )
    write_config(text)
    client = await make_client()
    runtime = client.app[RUNTIME]
    await runtime.memory.wait_ready()
    started = await (await client.post("/api/research/deep", json={"query": QUESTION})).json()
    job = await runtime.jobs.wait(started["researchId"])
    assert job.status == "complete", job.error
    sources = await runtime.jobs.store.sources(job.id)
    assert {"web", "memory"} <= {s.kind for s in sources}
    report = await runtime.jobs.store.report(job.id)
    assert report is not None and f"{fake.pages}/page/1" in report.markdown
    assert any(r["query"].get("format") == "json" for r in fake.requests)


async def test_misconfigured_web_search_fails_jobs_clearly(
    write_config: Callable[[str], Path], make_client: Any
) -> None:
    write_config('[research]\nweb_search = "brave"\nweb_search_key_env = "NO_SUCH_VAR_XYZ"\n')
    client = await make_client()
    response = await client.post("/api/research/deep", json={"query": "anything"})
    job_id = (await response.json())["researchId"]
    job = await client.app[RUNTIME].jobs.wait(job_id)
    assert job.status == "error" and job.error is not None and "needs an API key" in job.error
    assert (await client.get("/health")).status == 200
