"""The query API's examples in docs/api.md and docs/guide.md run as written against a real
daemon (only the port differs): curl with --fail-with-body, `research` the installed CLI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_fixture import DaemonHandle

DOCS = Path(__file__).resolve().parents[1] / "docs"
pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def _examples(doc: str, section: str) -> list[str]:
    """The ```bash blocks of one `## section` of a doc."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", body, flags=re.S)


def _run(daemon: DaemonHandle, script: str) -> subprocess.CompletedProcess[str]:
    prelude = (
        'curl() { command curl --fail-with-body "$@"; }\n'
        f'research() {{ "{sys.executable}" -m localresearch "$@"; }}\n'
        "set -e -o pipefail\n"
    )
    script = script.replace("127.0.0.1:31327", f"127.0.0.1:{daemon.port}")
    return subprocess.run(
        ["bash", "-c", prelude + script],
        env=daemon.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def notes_daemon(daemon_env: DaemonHandle, tmp_path: Path) -> Iterator[DaemonHandle]:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "sqlite.md").write_text("# SQLite\n\nSQLite keeps a whole database in one file.\n")
    (daemon_env.home / "config.toml").write_text(
        f'[memory]\npaths = ["{notes}"]\nwatch = false\n\n[research]\nmax_rounds = 1\n'
    )
    daemon_env.start()
    yield daemon_env
    daemon_env.stop()


def test_api_md_query_examples_run(notes_daemon: DaemonHandle) -> None:
    examples = _examples("api.md", "Query API")
    assert len(examples) >= 9
    for script in examples:
        result = _run(notes_daemon, script)
        assert result.returncode == 0, (script, result.stdout, result.stderr)
        assert result.stdout.strip(), script
    config = (notes_daemon.home / "config.toml").read_text()
    assert "max_rounds = 2" in config  # the last POST /config example replaced the file


def test_guide_query_examples_run(notes_daemon: DaemonHandle) -> None:
    examples = _examples("guide.md", "The query API")
    assert len(examples) == 3
    outputs = []
    for script in examples:
        result = _run(notes_daemon, script)
        assert result.returncode == 0, (script, result.stdout, result.stderr)
        outputs.append(result.stdout)
    assert "SQLite keeps a whole database in one file" in outputs[0]
    assert "sqlite.md" in outputs[0]
    assert '"version": "1"' in outputs[1] or '"version":"1"' in outputs[1]
    assert "Applied by the running daemon" in outputs[2]
    assert outputs[2].strip().endswith("1")
