"""`research deep` and `research jobs` against a real daemon on the builtin engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localresearch.cli.main import cli
from localresearch.paths import Paths
from tests.daemon_fixture import DaemonHandle
from tests.fakes.search_scifact import QUESTION, research_config, scifact_available, write_corpus

pytestmark = pytest.mark.skipif(not scifact_available(), reason="SciFact data set not present")


def test_help_has_examples() -> None:
    from click.testing import CliRunner

    runner = CliRunner()
    for args in (
        ["deep", "--help"],
        ["jobs", "--help"],
        ["jobs", "list", "--help"],
        ["jobs", "show", "--help"],
        ["jobs", "watch", "--help"],
        ["jobs", "cancel", "--help"],
        ["jobs", "export", "--help"],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "Example: research " in result.output, args


def test_deep_and_jobs_commands(tmp_path: Path, paths: Paths, daemon_env: DaemonHandle) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, extra=60, queries=20)
    paths.config_file.write_text(research_config(corpus, dimensions=3, max_rounds=1))
    daemon_env.start()
    try:
        result = daemon_env.cli("deep", QUESTION, "--dimensions", "3", "--rounds", "0", "--json")
        assert result.returncode == 0, result.stderr
        snapshot = json.loads(result.stdout)
        job_id = snapshot["researchId"]
        assert snapshot["status"] == "complete" and snapshot["dimensionsTotal"] == 3
        assert "## Sources" in snapshot["report"]

        live = daemon_env.cli("deep", QUESTION, "-d", "3")
        assert live.returncode == 0, live.stderr
        assert "Research res_" in live.stderr and "✓" in live.stderr  # progress: not in the report
        assert live.stdout.startswith("# ")
        assert "## Sources" in live.stdout and "homocysteine" in live.stdout.lower()

        listed = json.loads(daemon_env.cli("jobs", "list", "--json").stdout)
        assert [j["researchId"] for j in listed["jobs"]][1] == job_id
        table = daemon_env.cli("jobs", "list")
        assert job_id in table.stdout and "complete" in table.stdout

        shown = daemon_env.cli("jobs", "show", job_id)
        assert shown.returncode == 0 and "complete" in shown.stdout and "Sources" in shown.stdout

        watched = daemon_env.cli("jobs", "watch", job_id)
        assert watched.returncode == 0 and "## Sources" in watched.stdout

        out = tmp_path / "report.html"
        exported = daemon_env.cli("jobs", "export", job_id, "--format", "html", "-o", str(out))
        assert exported.returncode == 0, exported.stderr
        assert out.read_text().startswith("<!doctype html>")
        md = daemon_env.cli("jobs", "export", job_id)
        assert md.stdout.strip() == snapshot["report"].strip()

        cancelled = daemon_env.cli("jobs", "cancel", job_id)
        assert cancelled.returncode == 0 and "already finished" in cancelled.stdout

        missing = daemon_env.cli("jobs", "show", "res_nope")
        assert missing.returncode == 1
        assert "No research job with id 'res_nope'" in missing.stderr
        assert "Traceback" not in missing.stderr

        unknown = daemon_env.cli("jobs", "watch", "res_nope")
        assert unknown.returncode == 1 and "No research job" in unknown.stderr
        assert unknown.stdout == ""  # the error comes before any table is drawn

        lines = daemon_env.cli("jobs", "watch", job_id, "--json").stdout.splitlines()
        events = [json.loads(line) for line in lines]
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))
        assert events[0]["type"] == "scope_started" and events[-1]["type"] == "done"
        assert all(set(e) == {"id", "type", "data", "timestamp"} for e in events)

        detached = daemon_env.cli("deep", QUESTION, "--detach")
        assert detached.returncode == 0 and detached.stdout.strip().startswith("res_")
    finally:
        daemon_env.stop()


def test_commands_say_when_the_daemon_is_down(daemon_env: DaemonHandle) -> None:
    result = daemon_env.cli("jobs", "list")
    assert result.returncode == 3
    assert "not running" in result.stderr and "Traceback" not in result.stderr
