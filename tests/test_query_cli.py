"""`research query` against a real daemon on the builtin engine: text, JSON, the NDJSON stream,
and a model the provider cannot serve as a usage error."""

from __future__ import annotations

import json
from pathlib import Path

from localresearch.api.query import QueryPartial, QueryResponse
from localresearch.client import Client
from localresearch.paths import Paths
from tests.daemon_fixture import DaemonHandle

NOTE = (
    "# SQLite backups\n\n"
    "Use the online backup API or `VACUUM INTO` to copy a live SQLite database safely.\n"
    "Copying the file while it is written can give a corrupt copy.\n"
)


def test_query_command(tmp_path: Path, paths: Paths, daemon_env: DaemonHandle) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "backup.md").write_text(NOTE)
    paths.config_file.write_text(
        f"[memory]\npaths = [{json.dumps(str(notes))}]\nwatch = false\n\n"
        "[research]\ndimensions = 3\nmax_rounds = 0\n"
    )
    daemon_env.start()
    try:
        question = "How do I back up a live SQLite database?"
        result = daemon_env.cli("query", question, "--json", timeout=120)
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        assert answer["version"] == "1"
        assert "backup" in answer["answer"].lower()
        assert any("backup.md" in str(c) for c in answer["citations"]), answer["citations"]

        text = daemon_env.cli("query", question, timeout=120)
        assert text.returncode == 0, text.stderr
        assert "backup.md" in text.stdout

        streamed = daemon_env.cli("query", question, "--stream", "--json", timeout=120)
        assert streamed.returncode == 0, streamed.stderr
        lines = [json.loads(line) for line in streamed.stdout.splitlines() if line.strip()]
        assert len(lines) >= 2 and all(item.get("partial") for item in lines[:-1])
        assert "answer" in lines[-1] and not lines[-1].get("partial")
        assert all(item["step"]["kind"] and item["step"]["text"] for item in lines[:-1])
        assert lines[-2]["reasoning"][-1] == lines[-2]["step"]["text"]

        steps = daemon_env.cli("query", question, "--stream", timeout=120)
        assert steps.returncode == 0, steps.stderr
        assert "•" in steps.stdout and "backup.md" in steps.stdout

        # The client's typed objects: the response, and each stream line as its model.
        client = Client(daemon_env.url)
        typed = client.query(question)
        assert isinstance(typed, QueryResponse) and typed.answer
        assert typed.metrics.total_tokens.total >= 0 and typed.citations
        items = list(client.query_stream(question))
        assert all(isinstance(i, QueryPartial) for i in items[:-1]) and len(items) >= 2
        assert isinstance(items[-1], QueryResponse)
        assert items[-1].citations == typed.citations

        # The builtin engine serves only its own model: a usage error naming it, exit 2.
        refused = daemon_env.cli("query", question, "--model", "gpt-4o", timeout=60)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "builtin" in refused.stderr and "extractive" in refused.stderr
        assert "Traceback" not in refused.stderr
        served = daemon_env.cli(
            "query", question, "--model", "builtin/extractive", "--json", timeout=120
        )
        assert served.returncode == 0, served.stderr
        assert json.loads(served.stdout)["citations"]
    finally:
        daemon_env.stop()
