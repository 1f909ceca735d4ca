"""What the research commands print, as a script or a user at a terminal receives it, against a
real daemon: one JSON document per --json, only the report on stdout and never hard-wrapped when
piped, blank arguments as usage errors, whole IDs in tables and unique prefixes accepted, counts
in good English."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from localresearch.client import Client
from tests.daemon_fixture import DaemonHandle

LINK = "[the WAL docs](https://sqlite.org/wal.html)"
NOTE = (
    "# SQLite WAL\n\n"
    "WAL mode lets readers and writers of a SQLite database run at the same time without"
    f" blocking one another; see {LINK} for how checkpointing moves pages back into the file.\n"
)
QUESTION = "What does WAL mode do in SQLite?"
EMPTY = "Invalid value for 'QUESTION': the question is empty"


def _notes_config(daemon_env: DaemonHandle, tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "sqlite-wal.md").write_text(NOTE)
    (daemon_env.home / "config.toml").write_text(
        f"[memory]\npaths = [{json.dumps(str(notes))}]\nwatch = false\n\n"
        "[research]\ndimensions = 3\nmax_rounds = 1\n"
    )
    return notes


def test_counted_says_one_thing_and_many_things() -> None:
    from localresearch.plural import counted

    assert counted(1, "source") == "1 source"
    assert counted(0, "source") == "0 sources"
    assert counted(2, "file") == "2 files"
    assert counted(1, "gap round") == "1 gap round"
    assert counted(3, "index", "indexes") == "3 indexes"


def test_memory_add_refuses_an_empty_path(daemon: DaemonHandle) -> None:
    for blank in ("", "  "):
        result = daemon.cli("memory", "add", blank)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Invalid value for 'PATH': the path is empty" in result.stderr
        assert "Added" not in result.stdout
    removed = daemon.cli("memory", "remove", "")
    assert removed.returncode == 2 and "the path is empty" in removed.stderr
    sources = json.loads(daemon.cli("memory", "sources", "--json").stdout)
    assert [s["origin"] for s in sources] == ["workspace"]  # nothing was added


def test_memory_add_json_is_one_document_and_counts_read_well(
    daemon: DaemonHandle, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "one.md").write_text("# One\n\nA single note.\n")
    added = daemon.cli("memory", "add", str(notes), "--json")
    assert added.returncode == 0, added.stderr
    body = json.loads(added.stdout)  # one document, not a source then a report
    assert body["source"]["path"] == str(notes) and body["source"]["origin"] == "user"
    assert body["reindex"]["added"] == 1

    removed = daemon.cli("memory", "remove", str(notes))
    assert removed.returncode == 0, removed.stderr
    assert "(1 file left the index)" in removed.stdout

    again = daemon.cli("memory", "add", str(notes), "--json", "--no-index")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"source": body["source"], "reindex": None}
    assert "(1 chunk added," in daemon.cli("memory", "reindex").stdout


def test_an_empty_question_is_the_same_usage_error_everywhere(daemon: DaemonHandle) -> None:
    for command in ("ask", "deep", "query"):
        for blank in ("", "   "):
            result = daemon.cli(command, blank)
            assert result.returncode == 2, (command, result.stdout + result.stderr)
            assert EMPTY in result.stderr, (command, result.stderr)
            assert f"Usage: research {command}" in result.stderr


def test_config_set_takes_a_negative_number_as_the_value(daemon_env: DaemonHandle) -> None:
    result = daemon_env.cli("config", "set", "research.max_rounds", "-1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "No such option" not in result.stderr
    assert "research.max_rounds" in result.stderr and "-1" in result.stderr  # the range error
    daemon_env.start()
    try:
        live = daemon_env.cli("config", "set", "research.max_rounds", "-1")
        assert live.returncode == 2 and "No such option" not in live.stderr
        assert "-1" in live.stderr
    finally:
        daemon_env.stop()


def test_piped_answers_and_reports_are_the_markdown_as_is(
    daemon_env: DaemonHandle, tmp_path: Path
) -> None:
    _notes_config(daemon_env, tmp_path)
    daemon_env.start()
    try:
        # `research deep "q" > report.md`: stdout is the report alone, progress is on stderr.
        deep = daemon_env.cli("deep", QUESTION, timeout=120)
        assert deep.returncode == 0, deep.stderr
        assert deep.stdout.startswith("# "), deep.stdout[:300]
        assert "Writing the report" not in deep.stdout and "Research res_" not in deep.stdout
        assert "Research res_" in deep.stderr and "✓" in deep.stderr
        job_id = re.search(r"Research (res_\w+)", deep.stderr).group(1)  # type: ignore[union-attr]
        report = daemon_env.cli("jobs", "export", job_id).stdout
        assert deep.stdout.strip() == report.strip() and LINK in report

        # jobs show: the report as is, not rendered and wrapped at 80 columns; a prefix will do.
        shown = daemon_env.cli("jobs", "show", job_id[:9])
        assert shown.returncode == 0, shown.stderr
        assert report.strip() in shown.stdout
        bare = daemon_env.cli("jobs", "show", job_id[4:12], "--json")  # without "res_"
        assert json.loads(bare.stdout)["researchId"] == job_id

        # query: the answer whole (links and citations unsplit), counts in good English.
        as_json = json.loads(daemon_env.cli("query", QUESTION, "--json", timeout=120).stdout)
        text = daemon_env.cli("query", QUESTION, timeout=120)
        assert text.returncode == 0, text.stderr
        assert as_json["answer"].strip() in text.stdout
        assert LINK in text.stdout
        assert re.search(r"\n1 gap round, \d+ tokens?\n", text.stdout), text.stdout
        assert "(1 source)" in text.stdout and "(1 sources)" not in text.stdout
        streamed = daemon_env.cli("query", QUESTION, "--stream", timeout=120)
        assert LINK in streamed.stdout and "(1 source)" in streamed.stdout

        # ask: the verified answer as is, the sources after it.
        answer = json.loads(daemon_env.cli("ask", QUESTION, "--json").stdout)["answer"]
        asked = daemon_env.cli("ask", QUESTION)
        assert asked.returncode == 0, asked.stderr
        assert asked.stdout.startswith(answer.strip()) and LINK in asked.stdout
    finally:
        daemon_env.stop()


def _sessions_sharing_a_first_character(create: Callable[[], str]) -> list[str]:
    """Create sessions until two ids start alike (16 hex digits: 17 at most)."""
    ids: list[str] = []
    while True:
        new = create()
        if any(i[0] == new[0] for i in ids):
            return [*ids, new]
        ids.append(new)


def test_research_sessions_show_whole_ids_and_take_a_prefix(daemon: DaemonHandle) -> None:
    client = Client(daemon.url)
    topic = "how the write-ahead log of SQLite interacts with backups, checkpoints and readers"

    def create() -> str:
        session_id = client.research_session_create().session_id
        client.research_session_questions(session_id, topic)
        return session_id

    ids = _sessions_sharing_a_first_character(create)
    daemon.env["COLUMNS"] = "100"
    listed = daemon.cli("deep-sessions", "list")
    assert listed.returncode == 0, listed.stderr
    assert all(i in listed.stdout for i in ids), listed.stdout
    assert "…" not in listed.stdout.replace("...", "")

    shown = daemon.cli("deep-sessions", "show", ids[0][:8])
    assert shown.returncode == 0, shown.stderr
    assert "write-ahead log" in shown.stdout
    ambiguous = daemon.cli("deep-sessions", "show", ids[-1][0])
    assert ambiguous.returncode == 2, ambiguous.stdout + ambiguous.stderr
    assert "is ambiguous" in ambiguous.stderr and ids[-1] in ambiguous.stderr
    deleted = daemon.cli("deep-sessions", "delete", ids[0][:8])
    assert deleted.returncode == 0 and ids[0] in deleted.stdout
    gone = daemon.cli("deep-sessions", "show", ids[0][:8])
    assert gone.returncode == 1 and "not found" in gone.stderr


@pytest.mark.parametrize("columns", ["100", "60"])
def test_chat_sessions_show_whole_ids_and_take_a_prefix(daemon: DaemonHandle, columns: str) -> None:
    client = Client(daemon.url)
    title = "a conversation about the write-ahead log of SQLite, its checkpoints and backups"
    ids = _sessions_sharing_a_first_character(lambda: client.create_session(title).id)
    daemon.env["COLUMNS"] = columns
    listed = daemon.cli("sessions", "list")
    assert listed.returncode == 0, listed.stderr
    assert all(i in listed.stdout for i in ids), listed.stdout

    shown = daemon.cli("sessions", "show", ids[0][:6])
    assert shown.returncode == 0 and ids[0] in shown.stdout
    ambiguous = daemon.cli("sessions", "show", ids[-1][0])
    assert ambiguous.returncode == 2 and "is ambiguous" in ambiguous.stderr
    asked = daemon.cli("ask", "--session", ids[0][:6], "--json", "what is WAL?")
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["session_id"] == ids[0]
    deleted = daemon.cli("sessions", "delete", ids[0][:6], "--json")
    assert json.loads(deleted.stdout) == {"id": ids[0], "deleted": True}
