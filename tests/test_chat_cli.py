"""`research ask`, `chat`, `sessions` and `models` as a user runs them, against a real daemon."""

from __future__ import annotations

import json
from pathlib import Path

from tests.daemon_fixture import DaemonHandle

NOTES = """# Deploys

Deploys go out every Thursday after the test suite passes.
Rollbacks use the previous container image.
"""


def _write_notes(home: Path) -> None:
    from localresearch.paths import resolve_paths

    workspace = resolve_paths().default_workspace
    (workspace / "notes").mkdir(parents=True, exist_ok=True)
    (workspace / "notes" / "deploys.md").write_text(NOTES, encoding="utf-8")


def test_ask_starts_the_daemon_and_answers_offline(daemon_env: DaemonHandle) -> None:
    _write_notes(daemon_env.home)
    try:
        result = daemon_env.cli("ask", "--json", "when do deploys go out?")
        assert result.returncode == 0, result.stderr
        assert "Starting the localresearch daemon" in result.stderr
        body = json.loads(result.stdout)
        assert set(body) >= {"answer", "citations", "model", "tokens"}
        assert "every Thursday" in body["answer"]
        assert body["model"] == "builtin/extractive"
        assert body["citations"][0]["file"] == "notes/deploys.md"
        assert body["citations"][0]["line_start"] == 3
        assert body["citations"][0]["line_end"] == 3
        assert body["tokens"]["total"] > 0
        # the second ask finds it running and says nothing about starting
        again = daemon_env.cli("ask", "how do rollbacks work?")
        assert again.returncode == 0, again.stderr
        assert "Starting" not in again.stderr
        assert "previous container image. [1]" in again.stdout
        assert "Sources" in again.stdout
        assert "[1] notes/deploys.md:4" in again.stdout
        assert [s["supported"] for s in body["sentences"] if s["claim"]] == [True]
        # A model the configured provider cannot serve: a clear error, exit 2, no answer.
        wrong = daemon_env.cli("ask", "--model", "gpt-4o", "when do deploys go out?")
        assert wrong.returncode == 2, wrong.stdout + wrong.stderr
        assert "not served by provider 'builtin'" in wrong.stderr and "extractive" in wrong.stderr
        assert wrong.stdout == ""
        # Sources are always listed, saying so when there are none.
        nothing = daemon_env.cli("ask", "what is the capital of mongolia?")
        assert nothing.returncode == 0, nothing.stderr
        assert "Sources: none" in nothing.stdout
    finally:
        daemon_env.stop()


def test_sessions_models_and_chat_repl(daemon: DaemonHandle) -> None:
    from localresearch.client import Client

    _write_notes(daemon.home)
    Client(daemon.url).post("/api/memory/reindex", {})  # written after start: index now
    chat = daemon.cli("chat", input="when do deploys go out?\n/exit\n")
    assert chat.returncode == 0, chat.stderr
    assert "every Thursday" in chat.stdout
    assert "notes/deploys.md:3" in chat.stdout
    listed = json.loads(daemon.cli("sessions", "list", "--json").stdout)
    assert listed["total"] == 1
    sid = listed["sessions"][0]["id"]
    follow = daemon.cli("ask", "--session", sid, "--json", "and rollbacks?")
    assert follow.returncode == 0, follow.stderr
    assert json.loads(follow.stdout)["session_id"] == sid
    shown = daemon.cli("sessions", "show", sid)
    assert shown.returncode == 0
    assert "when do deploys go out?" in shown.stdout and "and rollbacks?" in shown.stdout
    assert json.loads(daemon.cli("sessions", "show", sid, "--json").stdout)["message_count"] == 4
    assert daemon.cli("sessions", "delete", sid).returncode == 0
    missing = daemon.cli("sessions", "show", sid)
    assert missing.returncode == 1
    assert f"No such session: {sid}" in missing.stderr
    bad = daemon.cli("ask", "--session", "nope", "hello")
    assert bad.returncode == 1 and "No such session: nope" in bad.stderr
    models = json.loads(daemon.cli("models", "--json").stdout)
    assert models["default"] == "builtin/extractive"
    text = daemon.cli("models").stdout
    assert "builtin/extractive" in text and "anthropic (needs key)" in text


def test_help_has_examples(daemon_env: DaemonHandle) -> None:
    for args in (["ask"], ["chat"], ["sessions", "list"], ["models"]):
        result = daemon_env.cli(*args, "--help")
        assert result.returncode == 0
        assert "Example" in result.stdout


def test_ask_reports_a_provider_failure_clearly(daemon_env: DaemonHandle) -> None:
    from tests.conftest import free_port

    daemon_env.env.update(
        LOCALRESEARCH_LLM__PROVIDER="ollama",
        LOCALRESEARCH_LLM__BASE_URL=f"http://127.0.0.1:{free_port()}",
        LOCALRESEARCH_LLM__MAX_RETRIES="0",
    )
    daemon_env.start()
    try:
        result = daemon_env.cli("ask", "--no-memory", "hello?")
        assert result.returncode == 1
        assert "ollama: cannot connect to http://127.0.0.1:" in result.stderr
        assert "[provider_error]" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        as_json = daemon_env.cli("ask", "--json", "hello?")
        assert as_json.returncode == 1 and "cannot connect" in as_json.stderr
    finally:
        daemon_env.stop()


def test_chat_repl_ctrl_c_sends_cancel() -> None:
    from localresearch.cli.chat import _render_answer

    class FakeSocket:
        def __init__(self) -> None:
            self.sent: list[str] = []
            self.script: list[object] = [
                json.dumps({"type": "delta", "data": {"text": "partial"}}),
                KeyboardInterrupt(),
                TimeoutError(),
                json.dumps({"type": "error", "data": {"code": "cancelled", "message": "x"}}),
            ]

        def recv(self, timeout: float | None = None) -> str:
            item = self.script.pop(0)
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, str)
            return item

        def send(self, text: str) -> None:
            self.sent.append(text)

    ws = FakeSocket()
    _render_answer(ws)
    assert [json.loads(s) for s in ws.sent] == [{"type": "cancel"}]
    assert ws.script == []  # kept reading until the answer ended; the session goes on


def test_readme_main_job_answers_with_the_unit_file(daemon: DaemonHandle) -> None:
    """`research memory add docs && research ask "How do I run the daemon under systemd?"`."""
    docs = Path(__file__).resolve().parent.parent / "docs"
    added = daemon.cli("memory", "add", str(docs))
    assert added.returncode == 0, added.stderr
    result = daemon.cli("ask", "How do I run the daemon under systemd?")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[Unit]" in out and "ExecStart=%h/.venv/bin/research daemon start --foreground" in out
    assert "systemctl --user daemon-reload" in out
    assert "guide.md:" in out.split("Sources", 1)[1]
    body = json.loads(daemon.cli("ask", "--json", "How do I run the daemon under systemd?").stdout)
    unit = next(c for c in body["citations"] if "[Unit]" in c["text"])
    assert unit["file"] == "guide.md" and unit["line_end"] - unit["line_start"] >= 10
