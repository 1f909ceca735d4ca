"""The memory HTTP API on the real app: spec shapes, any query text, streaming reindex."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from localresearch.server.keys import RUNTIME

SHARED = Path(__file__).resolve().parents[2] / "shared"
SCIFACT = SHARED / "datasets" / "scifact"

NASTY_QUERIES = [
    '"',
    '""',
    '"unbalanced quote',
    "AND",
    "OR OR OR",
    "NOT",
    "a AND NOT b",
    "NEAR(a b, 3)",
    "*",
    "**",
    "rust*",
    "*rust",
    "col:value",
    "heading: notes",
    "^start",
    "-minus",
    "well-known self-hosted",
    "(((",
    ")",
    "{}[]",
    "'; DROP TABLE memory_chunks; --",
    "\\",
    "ünïcödé straße",
    "日本語のメモ",
    "emoji 🦀🚀 only?",
    "🦀",
    "\u200b",
    "a" * 5000,
    " ".join(f"word{i}" for i in range(500)),
    "%",
    "_",
    "rust async",
]


async def _ready(client: Any) -> Any:
    memory = client.app[RUNTIME].memory
    await memory.wait_ready()
    return memory


async def _workspace_with_notes(make_client: Any) -> tuple[Any, Any]:
    client = await make_client()
    memory = await _ready(client)
    log = memory.workspace / "memory" / "2026-02-14.md"
    body = "\n".join(f"line {i}" for i in range(40))
    log.write_text(
        f"# 2026-02-14\n\n{body}\n\n## Rust\n\nDiscussed async/await patterns in Rust.\n",
        encoding="utf-8",
    )
    await memory.reindex()
    return client, memory


async def test_search_shape_matches_spec(make_client: Any) -> None:
    client, _memory = await _workspace_with_notes(make_client)
    response = await client.get("/api/memory/search", params={"q": "rust async", "limit": "5"})
    assert response.status == 200
    data = await response.json()
    assert data["query"] == "rust async"
    assert data["total"] == len(data["results"]) >= 1
    hit = data["results"][0]
    assert {"file", "content", "score", "line_start", "line_end"} <= set(hit)
    assert hit["file"] == "memory/2026-02-14.md"
    assert (hit["line_start"], hit["line_end"]) == (44, 46)
    assert "async/await" in hit["content"]
    assert isinstance(hit["score"], float) and hit["score"] > 0
    scores = [r["score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)


async def test_search_limit_and_errors(make_client: Any) -> None:
    client, _memory = await _workspace_with_notes(make_client)
    for params, message in (
        ({}, "Missing required parameter: q"),
        ({"q": ""}, "Query is empty"),
        ({"q": "   "}, "Query is empty"),
        ({"q": "rust", "limit": "0"}, "limit"),
        ({"q": "rust", "limit": "many"}, "limit"),
    ):
        response = await client.get("/api/memory/search", params=params)
        assert response.status == 400, params
        error = (await response.json())["error"]
        assert error["code"] == "invalid_request" and message in error["message"]
    one = await client.get("/api/memory/search", params={"q": "line memory rust", "limit": "1"})
    assert (await one.json())["total"] == 1


async def test_any_query_text_is_valid(make_client: Any) -> None:
    client, _memory = await _workspace_with_notes(make_client)
    for query in NASTY_QUERIES:
        response = await client.get("/api/memory/search", params={"q": query})
        assert response.status == 200, (query, await response.text())
        data = await response.json()
        assert data["query"] == query and data["total"] == len(data["results"])
    # NUL is the one exception, as docs/api.md says: %00 in a query value is a 400.
    response = await client.get("/api/memory/search", params={"q": "\x00"})
    assert response.status == 400
    assert "NUL" in (await response.json())["error"]["message"]
    # Operators are plain words: "rust AND NOT async" finds the Rust note.
    response = await client.get("/api/memory/search", params={"q": "rust AND NOT async"})
    assert (await response.json())["results"][0]["file"] == "memory/2026-02-14.md"
    # Prefix and phrase queries work.
    for query in ("asyn*", '"async await patterns"'):
        response = await client.get("/api/memory/search", params={"q": query})
        assert (await response.json())["total"] >= 1, query


async def test_stats_shape(make_client: Any) -> None:
    client, memory = await _workspace_with_notes(make_client)
    data = await (await client.get("/api/memory/stats")).json()
    assert data["workspace"] == str(memory.workspace)
    files = data["files"]
    assert files["total"] == 3
    assert set(files["memory_md"]) == {"size_bytes", "lines"}
    assert set(files["heartbeat_md"]) == {"size_bytes", "lines"}
    assert files["daily_logs"]["count"] == 1 and files["daily_logs"]["total_size_bytes"] > 0
    index = data["index"]
    assert index["chunks"] >= 4 and index["last_indexed"].endswith("Z")
    assert index["database_size_bytes"] > 0
    status = await (await client.get("/api/status")).json()
    assert status["memory"]["files_indexed"] == 3 and status["memory"]["chunks"] == index["chunks"]


async def test_sources_and_reindex_endpoints(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    await _ready(client)
    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "one.md").write_text("# One\n\nPlatypus facts.\n")
    (folder / "skip.bin").write_bytes(b"\x00\x01")
    response = await client.post("/api/memory/sources", json={"path": str(folder)})
    assert response.status == 201
    assert (await response.json())["origin"] == "user"
    again = await client.post("/api/memory/sources", json={"path": str(folder)})
    assert again.status == 409
    missing = await client.post("/api/memory/sources", json={})
    assert missing.status == 400
    listed = await (await client.get("/api/memory/sources")).json()
    assert [s["origin"] for s in listed["sources"]] == ["workspace", "user"]

    report = await (await client.post("/api/memory/reindex", json={})).json()
    assert report["added"] == 1 and report["chunks_added"] == 1
    assert report["skipped_reasons"] == {"unsupported type": 1}
    assert report["skipped_files"][0]["path"].endswith("skip.bin")
    listed = await (await client.get("/api/memory/sources")).json()
    assert listed["sources"][1]["files"] == 1  # what removing it drops

    removed = await client.delete("/api/memory/sources", params={"path": str(folder)})
    assert removed.status == 200 and (await removed.json())["files_removed"] == 1
    gone = await client.delete("/api/memory/sources", params={"path": str(folder)})
    assert gone.status == 404


async def test_reindex_streams_progress(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    await _ready(client)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(30):
        (folder / f"n{i}.md").write_text(f"# Note {i}\n\nText {i}.\n")
    await client.post("/api/memory/sources", json={"path": str(folder)})
    response = await client.post(
        "/api/memory/reindex", json={}, headers={"Accept": "text/event-stream"}
    )
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = [
        json.loads(line[6:])
        for line in (await response.text()).splitlines()
        if line.startswith("data: ")
    ]
    types = [e["type"] for e in events]
    assert types[0] == "start" and types[-1] == "done" and "progress" in types
    last_progress = [e for e in events if e["type"] == "progress"][-1]["data"]
    assert last_progress["files_done"] == last_progress["files_total"] == 30
    assert events[-1]["data"]["added"] == 30


async def test_search_answers_while_a_big_index_runs(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    await _ready(client)
    folder = tmp_path / "big"
    folder.mkdir()
    paragraph = " ".join(f"token{i}" for i in range(150))
    for i in range(600):
        sections = "\n\n".join(f"## S{j}\n\n{paragraph} file{i}" for j in range(8))
        (folder / f"doc{i}.md").write_text(f"# Doc {i}\n\n{sections}\n")
    await client.post("/api/memory/sources", json={"path": str(folder)})
    reindex = asyncio.ensure_future(client.post("/api/memory/reindex", json={}))
    memory = client.app[RUNTIME].memory
    for _ in range(200):
        if memory.indexing:
            break
        await asyncio.sleep(0.005)
    assert memory.indexing
    latencies = []
    while not reindex.done():
        started = time.perf_counter()
        response = await client.get("/api/memory/search", params={"q": "memory"})
        latencies.append(time.perf_counter() - started)
        assert response.status == 200
        assert (await response.json())["results"][0]["file"] == "MEMORY.md"
    assert latencies and max(latencies) < 1.0
    report = await (await reindex).json()
    assert report["added"] == 600


@pytest.mark.skipif(not SCIFACT.exists(), reason="shared SciFact dataset not present")
async def test_scifact_subset_finds_the_relevant_abstract(make_client: Any, tmp_path: Path) -> None:
    qrels: dict[str, set[str]] = {}
    for number, line in enumerate((SCIFACT / "qrels" / "test.tsv").read_text().splitlines()):
        if number:
            qid, doc, _score = line.split("\t")
            qrels.setdefault(qid, set()).add(doc)
    wanted = dict(list(qrels.items())[:20])
    relevant = set().union(*wanted.values())
    docs = tmp_path / "scifact"
    docs.mkdir()
    with (SCIFACT / "corpus.jsonl").open() as fh:
        for number, line in enumerate(fh):
            doc = json.loads(line)
            if doc["_id"] in relevant or number < 300:
                (docs / f"{doc['_id']}.md").write_text(f"# {doc['title']}\n\n{doc['text']}\n")
    queries = {}
    for line in (SCIFACT / "queries.jsonl").read_text().splitlines():
        query = json.loads(line)
        if query["_id"] in wanted:
            queries[query["_id"]] = query["text"]
    client = await make_client()
    await _ready(client)
    await client.post("/api/memory/sources", json={"path": str(docs)})
    await client.post("/api/memory/reindex", json={})
    found = 0
    for qid, text in queries.items():
        data = await (await client.get("/api/memory/search", params={"q": text})).json()
        top = [Path(r["file"]).stem for r in data["results"]]
        found += bool(set(top) & wanted[qid])
    assert found >= 16  # relevant abstract in the top 10 for at least 80% of the queries
