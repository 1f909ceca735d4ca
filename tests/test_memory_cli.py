"""`research memory ...` against a real daemon process, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.daemon_fixture import DaemonHandle


def test_memory_commands_end_to_end(daemon: DaemonHandle, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "rust.md").write_text(
        "# Rust\n\nOwnership rules.\n\n## Async\n\nTokio runs async tasks on a runtime.\n"
    )
    (notes / "photo.jpg").write_bytes(b"\xff\xd8\xff\x00")

    added = daemon.cli("memory", "add", str(notes))
    assert added.returncode == 0, added.stderr
    assert "Added" in added.stdout and "1 added" in added.stdout
    assert "unsupported type" in added.stdout

    found = daemon.cli("memory", "search", "tokio async", "--json")
    assert found.returncode == 0, found.stderr
    data = json.loads(found.stdout)
    assert data["results"][0]["file"] == "rust.md"
    assert data["results"][0]["line_start"] == 5

    plain = daemon.cli("memory", "search", "tokio async", "--limit", "3")
    assert "rust.md:5" in plain.stdout and "Tokio" in plain.stdout

    stats = json.loads(daemon.cli("memory", "stats", "--json").stdout)
    assert stats["files"]["total"] == 3 and stats["index"]["chunks"] >= 3
    assert "Chunks:" in daemon.cli("memory", "stats").stdout

    listed = daemon.cli("memory", "sources")
    assert "workspace" in listed.stdout and str(notes) in listed.stdout

    report = json.loads(daemon.cli("memory", "reindex", "--json").stdout)
    assert report["added"] == 0 and report["unchanged"] == 3

    empty = daemon.cli("memory", "search", "  ")
    assert empty.returncode != 0 and "Query is empty" in empty.stderr
    assert "Traceback" not in empty.stderr

    removed = daemon.cli("memory", "remove", str(notes))
    assert removed.returncode == 0 and "1 file left the index" in removed.stdout
    after = json.loads(daemon.cli("memory", "search", "tokio", "--json").stdout)
    assert after["results"] == []


def test_memory_help_has_examples(daemon_env: DaemonHandle) -> None:
    for command in ("search", "stats", "reindex", "add", "remove", "sources"):
        result = daemon_env.cli("memory", command, "--help")
        assert result.returncode == 0 and "Example: research memory" in result.stdout
