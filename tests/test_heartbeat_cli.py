"""`research heartbeat` and `research schedule` end to end, against a real daemon process."""

from __future__ import annotations

import json
from typing import Any


def test_schedule_and_heartbeat_commands(daemon: Any) -> None:
    added = daemon.cli("schedule", "add", "every 1d at 08:00", "What did I note yesterday?")
    assert added.returncode == 0, added.stderr
    assert "What did I note yesterday?" in added.stdout and "08:00" in added.stdout
    research = daemon.cli(
        "schedule", "add", "0 9 * * mon", "State of RAG evaluation", "--research", "--json"
    )
    assert research.returncode == 0, research.stderr
    research_item = json.loads(research.stdout)
    assert research_item["kind"] == "research"

    listed = daemon.cli("schedule", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert [i["text"] for i in items] == ["What did I note yesterday?", "State of RAG evaluation"]
    text = (daemon.home / "data" / "workspace" / "HEARTBEAT.md").read_text()
    assert "- State of RAG evaluation\n  every: 0 9 * * mon\n  due: " in text

    removed = daemon.cli("schedule", "remove", research_item["id"])
    assert removed.returncode == 0, removed.stderr
    assert len(json.loads(daemon.cli("schedule", "list", "--json").stdout)) == 1

    status = daemon.cli("heartbeat", "status")
    assert status.returncode == 0, status.stderr
    assert "Heartbeat: disabled" in status.stdout  # the fixture disables the schedule
    assert "What did I note yesterday?" in status.stdout

    ran = daemon.cli("heartbeat", "run", "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["trigger"] == "manual"

    assert "paused" in daemon.cli("heartbeat", "pause").stdout
    assert json.loads(daemon.cli("heartbeat", "status", "--json").stdout)["paused"] is True
    assert daemon.cli("heartbeat", "resume").returncode == 0

    # errors are one clear line, never a traceback
    bad = daemon.cli("schedule", "add", "every fortnight", "question")
    assert bad.returncode == 1
    assert "fortnight" in bad.stderr and "Traceback" not in bad.stderr
    missing = daemon.cli("schedule", "remove", "deadbeef")
    assert missing.returncode == 1 and "deadbeef" in missing.stderr


def test_cli_without_daemon(daemon_env: Any) -> None:
    result = daemon_env.cli("heartbeat", "status")
    assert result.returncode == 3
    assert "not running" in result.stderr and "Traceback" not in result.stderr


def test_pause_and_schedules_survive_a_daemon_restart(daemon: Any) -> None:
    assert daemon.cli("schedule", "add", "every 2h", "Anything new?").returncode == 0
    assert daemon.cli("heartbeat", "pause").returncode == 0
    assert daemon.stop().returncode == 0
    daemon.start()
    state = json.loads(daemon.cli("heartbeat", "status", "--json").stdout)
    assert state["paused"] is True
    assert [t["text"] for t in state["pending"]] == ["Anything new?"]


def test_schedule_commands_work_on_the_file_without_a_daemon(daemon_env: Any) -> None:
    (daemon_env.home / "config.toml").write_text('[heartbeat]\ntimezone = "America/New_York"\n')
    path = daemon_env.home / "data" / "workspace" / "HEARTBEAT.md"
    path.parent.mkdir(parents=True)
    mine = "# Heartbeat\n\nMy notes.\n\n## Pending\n\n- Odd one\n  colour: red\n\n## Completed\n"
    path.write_text(mine)

    added = daemon_env.cli("schedule", "add", "every 1d at 08:00", "Morning digest", "--json")
    assert added.returncode == 0, added.stderr
    assert "daemon is not running" in added.stderr and str(path) in added.stderr
    item = json.loads(added.stdout)  # stdout stays clean JSON
    assert item["every"] == "every 1d at 08:00" and item["due_local"].endswith("08:00")
    text = path.read_text()
    assert text.startswith("# Heartbeat\n\nMy notes.\n\n## Pending\n\n- Odd one\n  colour: red\n")
    assert "- Morning digest\n  every: every 1d at 08:00\n  due: " in text
    assert daemon_env.cli("schedule", "add", "2h", "Inbox", "--research").returncode == 0

    listed = daemon_env.cli("schedule", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [i["text"] for i in json.loads(listed.stdout)] == ["Morning digest", "Inbox"]
    assert "Morning digest" in daemon_env.cli("schedule", "list").stdout

    removed = daemon_env.cli("schedule", "remove", item["id"])
    assert removed.returncode == 0, removed.stderr
    assert "Removed" in removed.stdout and "daemon is not running" in removed.stderr
    assert "Morning digest" not in path.read_text() and "colour: red" in path.read_text()

    bad = daemon_env.cli("schedule", "add", "every fortnight", "q")
    assert bad.returncode == 1 and "fortnight" in bad.stderr and "Traceback" not in bad.stderr
    missing = daemon_env.cli("schedule", "remove", "deadbeef")
    assert missing.returncode == 1 and "deadbeef" in missing.stderr
    assert "Traceback" not in missing.stderr

    daemon_env.start()  # the daemon sees what was written without it
    try:
        status = json.loads(daemon_env.cli("heartbeat", "status", "--json").stdout)
        assert [t["text"] for t in status["pending"]] == ["Inbox"]
        assert status["malformed"][0]["text"] == "- Odd one\n  colour: red"
        online = daemon_env.cli("schedule", "list", "--json")
        assert "not running" not in online.stderr
    finally:
        daemon_env.stop()


def test_schedule_without_daemon_reports_a_bad_heartbeat_config(daemon_env: Any) -> None:
    (daemon_env.home / "config.toml").write_text('[heartbeat]\ntimezone = "Mars/Olympus"\n')
    result = daemon_env.cli("schedule", "list")
    assert result.returncode == 2, result.stderr
    assert "heartbeat.timezone" in result.stderr and "Traceback" not in result.stderr


def test_status_times_are_in_the_heartbeats_timezone(daemon: Any) -> None:
    from localresearch.cli.heartbeat import local_time

    # Run times are shown in the zone the active hours are in, not the machine's.
    assert local_time("2026-06-01T00:00:00Z", "Asia/Tokyo") == "2026-06-01 09:00 JST"
    assert local_time("2026-06-01T00:00:00Z", "Not/AZone").startswith("2026-06-01")
    assert daemon.cli("config", "set", "heartbeat.timezone", "Asia/Tokyo").returncode == 0
    assert daemon.cli("config", "set", "heartbeat.active_hours", "08:00-22:00").returncode == 0
    assert daemon.stop().returncode == 0  # heartbeat settings apply at start
    daemon.start()
    status = daemon.cli("heartbeat", "status")
    assert status.returncode == 0, status.stderr
    assert "active hours: 08:00-22:00 (Asia/Tokyo)" in " ".join(status.stdout.split())
