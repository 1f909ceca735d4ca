"""The heartbeat over real HTTP on the real app: shapes, errors, and tasks run by real services."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from localresearch.api.research import JobStatus
from localresearch.config import ConfigError, load_config
from localresearch.heartbeat.service import HeartbeatSettings
from localresearch.paths import Paths
from localresearch.server.keys import RUNTIME

NY_CONFIG = '[heartbeat]\ntimezone = "America/New_York"\n'


def heartbeat_md(paths: Paths) -> Path:
    return paths.default_workspace / "HEARTBEAT.md"


async def error_of(response: Any, status: int) -> dict[str, str]:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"}
    return dict(body["error"])


async def test_status_shapes(make_client: Any, write_config: Any) -> None:
    write_config(NY_CONFIG + 'active_hours = "08:00-22:00"\n')
    client = await make_client()
    r = await client.get("/api/heartbeat")
    assert r.status == 200
    data = await r.json()
    assert {
        "enabled",
        "paused",
        "running",
        "last_run",
        "next_run",
        "last_result",
        "interval",
        "timeout",
        "active_hours",
        "timezone",
        "pending",
        "malformed",
        "file",
    } <= set(data)
    assert data["enabled"] is True and data["paused"] is False
    assert data["interval"] == "30m" and data["timeout"] == "15m"
    assert data["timezone"] == "America/New_York" and data["active_hours"] == "08:00-22:00"
    assert data["next_run"].endswith("Z")
    status = await (await client.get("/api/status")).json()
    assert set(status["heartbeat"]) >= {"enabled", "last_run", "next_run", "last_result"}
    assert status["heartbeat"]["next_run"] == data["next_run"]


async def test_schedules_crud(make_client: Any, write_config: Any, paths: Paths) -> None:
    write_config(NY_CONFIG)
    client = await make_client()
    r = await client.post(
        "/api/schedules",
        json={"every": "every 1d at 08:00", "question": "What changed in my notes?"},
    )
    assert r.status == 201, await r.text()
    added = await r.json()
    assert added["every"] == "every 1d at 08:00" and added["kind"] == "ask"
    assert added["due_local"].endswith("08:00")
    text = heartbeat_md(paths).read_text()
    assert "- What changed in my notes?\n  every: every 1d at 08:00\n  due: " in text
    r = await client.post(
        "/api/schedules",
        json={"every": "0 9 * * mon", "question": "RAG news", "kind": "research",
              "priority": "high"},
    )  # fmt: skip
    assert r.status == 201
    listed = (await (await client.get("/api/schedules")).json())["schedules"]
    assert [s["text"] for s in listed] == ["What changed in my notes?", "RAG news"]
    assert listed[1]["kind"] == "research" and listed[1]["priority"] == "high"

    r = await client.delete(f"/api/schedules/{added['id']}")
    assert r.status == 204
    assert "What changed in my notes?" not in heartbeat_md(paths).read_text()
    error = await error_of(await client.delete(f"/api/schedules/{added['id']}"), 404)
    assert error["code"] == "not_found" and added["id"] in error["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"every": "every fortnight", "question": "q"}, "fortnight"),
        ({"every": "1d"}, "question"),
        ({"question": "q"}, "every"),
        ({"every": "1d", "question": "   "}, "empty"),
        ({"every": "1d", "question": "q", "kind": "dance"}, "kind"),
        ({"every": "1d", "question": "q", "priority": "urgent"}, "priority"),
        ({"every": 5, "question": "q"}, "every"),
        ({"every": "61 * * * *", "question": "q"}, "cron"),
    ],
)
async def test_bad_schedules_are_400(make_client: Any, body: dict[str, Any], needle: str) -> None:
    client = await make_client()
    error = await error_of(await client.post("/api/schedules", json=body), 400)
    assert error["code"] == "invalid_request"
    assert needle in error["message"]


async def test_non_json_body_is_415(make_client: Any) -> None:
    client = await make_client()
    r = await client.post("/api/schedules", data="every=1d", headers={"Content-Type": "text/plain"})
    assert (await error_of(r, 415))["code"] == "unsupported_media_type"


async def test_pause_and_resume_persist(make_client: Any) -> None:
    client = await make_client()
    paused = await (await client.post("/api/heartbeat/pause")).json()
    assert paused["paused"] is True
    assert (await (await client.get("/api/status")).json())["heartbeat"]["paused"] is True
    resumed = await (await client.post("/api/heartbeat/resume")).json()
    assert resumed["paused"] is False


async def test_run_now_answers_with_chat_and_completes_the_task(
    make_client: Any, write_config: Any, paths: Paths
) -> None:
    write_config(NY_CONFIG)
    client = await make_client()
    runtime = client.server.app[RUNTIME]
    workspace = paths.default_workspace
    (workspace / "notes.md").write_text("# SQLite\n\nWAL mode lets readers run during a write.\n")
    text = heartbeat_md(paths).read_text()
    heartbeat_md(paths).write_text(
        text.replace(
            "## Pending\n",
            "## Pending\n\n- What does WAL mode let readers do?\n- Broken\n  colour: red\n",
        )
    )
    if runtime.memory is not None and hasattr(runtime.memory, "reindex"):
        await runtime.memory.reindex()
    r = await client.post("/api/heartbeat/run")
    assert r.status == 200, await r.text()
    result = await r.json()
    assert result["status"] == "ok" and result["trigger"] == "manual" and result["ran"] == 1
    assert result["tasks"][0]["text"] == "What does WAL mode let readers do?"
    assert result["tasks"][0]["summary"]
    after = heartbeat_md(paths).read_text()
    assert "- [x] What does WAL mode let readers do? (done " in after
    assert "- Broken\n  colour: red\n" in after  # malformed entry kept as written
    logs = list((workspace / "memory").glob("*.md"))
    joined = "\n".join(p.read_text() for p in logs)
    assert "Heartbeat: What does WAL mode let readers do?" in joined
    assert "entries it cannot read" in joined
    status = await (await client.get("/api/heartbeat")).json()
    assert status["last_result"]["ran"] == 1
    assert status["malformed"][0]["reason"].startswith("unknown field")


async def test_research_task_runs_as_a_job_and_its_report_is_logged(
    make_client: Any, paths: Paths
) -> None:
    client = await make_client()
    runtime = client.server.app[RUNTIME]
    text = heartbeat_md(paths).read_text()
    heartbeat_md(paths).write_text(
        text.replace(
            "## Pending\n", "## Pending\n\n- How does SQLite WAL work?\n  kind: research\n"
        )
    )
    first = await (await client.post("/api/heartbeat/run")).json()
    task = first["tasks"][0]
    assert task["status"] == "started", first
    job_id = task["link"].split("/")[4]
    assert task["link"] == f"/api/research/deep/{job_id}/report?format=md"
    await asyncio.wait_for(runtime.jobs.wait(job_id), 30)
    # logged when the job ends (the heartbeat subscribes), not at the next heartbeat
    await asyncio.wait_for(runtime.heartbeat.wait_followed(), 10)

    def logs() -> str:
        return "\n".join(p.read_text() for p in (paths.default_workspace / "memory").glob("*.md"))

    assert "Heartbeat research finished: How does SQLite WAL work?" in logs()
    entry = logs().split("Heartbeat research finished: How does SQLite WAL work?", 1)[1]
    assert f"Full report: `research jobs export {job_id}`" in entry
    body = entry.split("Full report:", 1)[0].strip()
    assert body and all(line.startswith(">") for line in body.splitlines())  # quoted digest
    snapshot = JobStatus.of(await runtime.jobs.snapshot(job_id)).to_dict()
    report_headings = [ln for ln in snapshot.get("report", "").splitlines() if ln.startswith("#")]
    assert report_headings  # the report has headings; the log must not have gained any
    log_headings = [ln for ln in logs().splitlines() if ln.startswith("#")]
    assert all(ln.startswith("# 20") or ln.startswith("## ") for ln in log_headings)
    assert not any(h in log_headings for h in report_headings)
    second = await (await client.post("/api/heartbeat/run")).json()
    assert not [t for t in second["tasks"] if t["status"] == "finished"]  # logged once
    assert logs().count("Heartbeat research finished: How does SQLite WAL work?") == 1


async def test_disabled_heartbeat_reports_no_next_run(make_client: Any, write_config: Any) -> None:
    write_config("[heartbeat]\nenabled = false\n")
    client = await make_client()
    brief = (await (await client.get("/api/status")).json())["heartbeat"]
    assert brief["enabled"] is False and brief["next_run"] is None
    result = await (await client.post("/api/heartbeat/run")).json()
    assert result["status"] == "ok"  # an explicit run still works


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ('interval = "soon"', "heartbeat.interval"),
        ('interval = "10s"', "heartbeat.interval"),
        ('timeout = "5"', "heartbeat.timeout"),
        ('active_hours = "8-22"', "heartbeat.active_hours"),
        ('timezone = "Nowhere/Land"', "heartbeat.timezone"),
    ],
)
def test_bad_settings_name_their_key(
    write_config: Any, paths: Paths, setting: str, key: str
) -> None:
    write_config(f"[heartbeat]\n{setting}\n")
    with pytest.raises(ConfigError) as info:
        HeartbeatSettings.from_config(load_config(paths.config_file))
    assert info.value.key == key
