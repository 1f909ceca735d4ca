"""`research deep --interactive` and `research deep-sessions` against a real daemon, as a user
types them: answers on stdin, the plan edited once, then accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.daemon_fixture import DaemonHandle
from tests.fakes.search_scifact import scifact_available, write_corpus

pytestmark = pytest.mark.skipif(not scifact_available(), reason="SciFact not in ../shared")


def test_interactive_deep_research_and_session_commands(
    daemon_env: DaemonHandle, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, extra=60, queries=10)
    (daemon_env.home / "config.toml").write_text(
        f'[memory]\npaths = ["{corpus}"]\nwatch = false\n', encoding="utf-8"
    )
    daemon_env.start()
    try:
        # Answers to the questions (two left empty), then: edit the plan once, accept it.
        typed = "elderly women\nsince 2005\na short overview\n\n\ne\nalso cover calcium\ny\n"
        done = daemon_env.cli(
            "deep", "--interactive", "vitamin D and bone fractures", "--json", input=typed
        )
        assert done.returncode == 0, done.stderr
        session = json.loads(done.stdout)
        assert session["phase"] == "completed" and session["progress"] == 100
        assert "1. " in done.stderr and "vitamin D and bone fractures" in done.stderr
        assert (
            session["feedback"] == "elderly women\nsince 2005\na short overview\nalso cover calcium"
        )
        assert "## 1. Elderly women" in session["reportPlan"]
        assert "Calcium" in session["reportPlan"]  # the edit reached the plan
        assert "Depth: overview (3 research tasks)" in session["reportPlan"]
        assert session["finalReport"].startswith("# vitamin D and bone fractures")
        assert "%" in done.stderr  # progress was shown
        listed = json.loads(daemon_env.cli("deep-sessions", "list", "--json").stdout)
        assert [s["id"] for s in listed] == [session["id"]]
        shown = daemon_env.cli("deep-sessions", "show", session["id"])
        assert shown.returncode == 0 and "Research Plan" in shown.stdout
        assert daemon_env.cli("deep-sessions", "delete", session["id"]).returncode == 0
        missing = daemon_env.cli("deep-sessions", "show", session["id"])
        assert missing.returncode != 0 and "not found" in (missing.stdout + missing.stderr)
    finally:
        daemon_env.stop()
