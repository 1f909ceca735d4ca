"""The research HTTP API on the real app: spec shapes, SSE replay and resume, errors, exports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localresearch.client import parse_sse
from localresearch.errors import ProviderError
from localresearch.events import Event
from localresearch.server.keys import RUNTIME
from tests.fakes.search_scifact import QUESTION, research_config, scifact_available, write_corpus

pytestmark = pytest.mark.skipif(not scifact_available(), reason="SciFact data set not present")


@pytest.fixture
def corpus_config(tmp_path: Path, write_config: Callable[[str], Path]) -> Callable[..., None]:
    corpus = tmp_path / "corpus"
    write_corpus(corpus)

    def configure(**research: Any) -> None:
        settings = {"dimensions": 3, "max_rounds": 1, **research}
        write_config(research_config(corpus, **settings))

    return configure


async def _client(make_client: Any) -> Any:
    client = await make_client()
    runtime = client.app[RUNTIME]
    await runtime.memory.wait_ready()
    return client


async def _events(client: Any, job_id: str, headers: dict[str, str] | None = None) -> list[Event]:
    response = await client.get(f"/api/research/deep/{job_id}", headers=headers or {})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    text = await response.text()
    assert "event:" not in text  # EventSource.onmessage clients see every event
    return list(parse_sse(text.splitlines(keepends=True)))


async def _start(client: Any, body: dict[str, Any]) -> str:
    response = await client.post("/api/research/deep", json=body)
    assert response.status == 200, await response.text()
    data = await response.json()
    assert data["status"] == "started"
    assert set(data) == {"researchId", "status"}
    return str(data["researchId"])


async def test_start_stream_status_report(make_client: Any, corpus_config: Any) -> None:
    corpus_config()
    client = await _client(make_client)
    job_id = await _start(client, {"query": QUESTION, "sessionId": "s-1"})
    events = await _events(client, job_id)
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == "scope_started" and events[0].data == {"query": QUESTION}
    assert events[-1].type == "done" and events[-1].data["researchId"] == job_id
    status = await (await client.get(f"/api/research/deep/{job_id}/status")).json()
    spec = {"researchId", "status", "phase", "dimensionsTotal", "dimensionsComplete"}
    assert spec | {"sourceCount", "report"} <= set(status)
    assert status["status"] == "complete" and status["phase"] == "done"
    assert status["sessionId"] == "s-1"
    report = "".join(e.data["text"] for e in events if e.type == "synthesis_delta")
    assert status["report"] == report
    md = await client.get(f"/api/research/deep/{job_id}/report")
    assert md.headers["Content-Type"].startswith("text/markdown")
    assert await md.text() == report
    html = await client.get(f"/api/research/deep/{job_id}/report?format=html")
    page = await html.text()
    assert page.startswith("<!doctype html>") and "<h2>Sources</h2>" in page
    assert "<script" not in page
    data = await (await client.get(f"/api/research/deep/{job_id}/report?format=json")).json()
    assert data["markdown"] == report and data["partial"] is False
    assert len(data["sources"]) == events[-2].data["sourceCount"]
    assert {"scope", "synthesis"} <= set(data["usage"])


async def test_late_subscriber_and_last_event_id_resume(
    make_client: Any, corpus_config: Any
) -> None:
    corpus_config()
    client = await _client(make_client)
    job_id = await _start(client, {"query": QUESTION})
    full = await _events(client, job_id)
    assert full[-1].type == "done"
    # Resume after any event: exactly the rest, no loss, no duplicate, same content.
    for cut in (1, 7, len(full) - 1, len(full)):
        rest = await _events(client, job_id, {"Last-Event-ID": str(cut)})
        assert [e.id for e in rest] == [e.id for e in full[cut:]]
        assert [e.to_dict() for e in rest] == [e.to_dict() for e in full[cut:]]
    query_param = await client.get(f"/api/research/deep/{job_id}?lastEventId=5")
    assert next(e.id for e in parse_sse((await query_param.text()).splitlines(True))) == 6


async def test_live_subscribers_resume_mid_job_without_loss(
    make_client: Any, corpus_config: Any
) -> None:
    corpus_config(dimensions=4, max_rounds=2)
    client = await _client(make_client)
    job_id = await _start(client, {"query": QUESTION})
    # Several subscribers attach while the job runs; one drops after 3 events and resumes.
    response = await client.get(f"/api/research/deep/{job_id}")
    first: list[Event] = []
    buffer = b""
    while len(first) < 3:
        buffer += await response.content.readany()
        *frames, rest = buffer.split(b"\n\n")
        for frame in frames:
            first.extend(parse_sse([*frame.decode().splitlines(True), "\n"]))
        buffer = rest
    first = first[:3]
    response.close()
    others = await asyncio.gather(*(_events(client, job_id) for _ in range(5)))
    resumed = await _events(client, job_id, {"Last-Event-ID": str(first[-1].id)})
    combined = [e.id for e in first + resumed]
    assert combined == list(range(1, len(combined) + 1))
    for stream in others:
        assert [e.id for e in stream] == combined


async def test_bad_input_gets_the_envelope(make_client: Any, corpus_config: Any) -> None:
    corpus_config()
    client = await _client(make_client)
    cases: list[tuple[str, str, Any, int]] = [
        ("POST", "/api/research/deep", {}, 400),
        ("POST", "/api/research/deep", {"query": "   "}, 400),
        ("POST", "/api/research/deep", {"query": 42}, 400),
        ("POST", "/api/research/deep", {"query": "x", "dimensions": 99}, 400),
        ("POST", "/api/research/deep", {"query": "x", "rounds": -1}, 400),
        ("POST", "/api/research/deep", {"query": "x" * 5000}, 400),
        ("GET", "/api/research/deep/res_missing", None, 404),
        ("GET", "/api/research/deep/res_missing/status", None, 404),
        ("GET", "/api/research/deep/res_missing/report", None, 404),
        ("DELETE", "/api/research/deep/res_missing", None, 404),
        ("GET", "/api/research/deep?limit=0", None, 400),
        ("GET", "/api/research/deep?limit=abc", None, 400),
        ("GET", "/api/research/deep?status=bogus", None, 400),
    ]
    for method, path, body, status in cases:
        response = await client.request(method, path, json=body)
        assert response.status == status, (method, path, body, await response.text())
        error = (await response.json())["error"]
        assert error["code"] and error["message"], error
    raw = await client.post(
        "/api/research/deep", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert raw.status == 400
    job_id = await _start(client, {"query": QUESTION})
    bad_format = await client.get(f"/api/research/deep/{job_id}/report?format=pdf")
    assert bad_format.status == 400


async def test_list_is_newest_first_and_paginated(make_client: Any, corpus_config: Any) -> None:
    corpus_config(max_concurrent_jobs=2)
    client = await _client(make_client)
    ids = [await _start(client, {"query": f"{QUESTION} ({n})"}) for n in range(5)]
    runtime = client.app[RUNTIME]
    for job_id in ids:
        await runtime.jobs.wait(job_id)
    page1 = await (await client.get("/api/research/deep?limit=2")).json()
    page2 = await (await client.get("/api/research/deep?limit=2&offset=2")).json()
    page3 = await (await client.get("/api/research/deep?limit=2&offset=4")).json()
    listed = [j["researchId"] for p in (page1, page2, page3) for j in p["jobs"]]
    assert listed == list(reversed(ids))
    assert page1["total"] == 5 and page1["nextOffset"] == 2 and page3["nextOffset"] is None
    assert all(j["status"] == "complete" and "report" not in j for j in page1["jobs"])
    done = await (await client.get("/api/research/deep?status=complete")).json()
    assert done["total"] == 5


async def test_concurrency_limit_queues_jobs(make_client: Any, corpus_config: Any) -> None:
    corpus_config(max_concurrent_jobs=1)
    client = await _client(make_client)
    runtime = client.app[RUNTIME]
    ids = [await _start(client, {"query": QUESTION}) for _ in range(3)]
    snapshots = [await (await client.get(f"/api/research/deep/{i}/status")).json() for i in ids]
    # Only one job may run at a time; the spec's snapshot says the others run too (queued).
    assert sum(s["queued"] for s in snapshots) >= 2
    assert {s["status"] for s in snapshots} <= {"running", "complete"}
    running_together = 0
    seen: set[str] = set()
    while len(seen) < 3:
        rows = [await runtime.jobs.store.get(i) for i in ids]
        running_together = max(running_together, sum(r.status == "running" for r in rows))
        seen |= {r.id for r in rows if r.status == "complete"}
        await asyncio.sleep(0.005)
    assert running_together <= 1


async def test_report_before_completion_is_a_conflict(make_client: Any, corpus_config: Any) -> None:
    corpus_config(max_concurrent_jobs=1)
    client = await _client(make_client)
    await _start(client, {"query": QUESTION})
    queued = await _start(client, {"query": QUESTION})
    response = await client.get(f"/api/research/deep/{queued}/report")
    assert response.status == 409
    assert "no report yet" in (await response.json())["error"]["message"]
    body = json.loads(await (await client.get(f"/api/research/deep/{queued}/status")).text())
    assert body["status"] in ("queued", "running")


async def test_malformed_last_event_id_is_a_400_not_a_full_replay(
    make_client: Any, corpus_config: Any
) -> None:
    corpus_config()
    client = await _client(make_client)
    job_id = await _start(client, {"query": QUESTION})
    await client.app[RUNTIME].jobs.wait(job_id)
    for bad in ("abc", "-3", "1.5", "７"):
        response = await client.get(f"/api/research/deep/{job_id}", headers={"Last-Event-ID": bad})
        assert response.status == 400, bad
        error = (await response.json())["error"]
        assert error["code"] == "invalid_request" and "Last-Event-ID" in error["message"]
    resumed = await _events(client, job_id, {"Last-Event-ID": " 3 "})
    assert resumed[0].id == 4


async def test_a_failed_job_is_done_and_its_report_says_why(
    make_client: Any, corpus_config: Any
) -> None:
    corpus_config()
    client = await _client(make_client)
    jobs = client.app[RUNTIME].jobs

    def broken() -> Any:
        raise ProviderError("model server is down (HTTP 503)")

    jobs.engine_factory = broken
    job_id = await _start(client, {"query": QUESTION})
    await jobs.wait(job_id)
    status = await (await client.get(f"/api/research/deep/{job_id}/status")).json()
    assert status["status"] == "error" and status["phase"] == "done"
    assert status["error"] == "model server is down (HTTP 503)"
    response = await client.get(f"/api/research/deep/{job_id}/report")
    assert response.status == 409
    message = (await response.json())["error"]["message"]
    assert "ended with an error: model server is down (HTTP 503)" in message
