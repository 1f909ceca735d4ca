"""A model whose stream breaks mid-answer, behind a real daemon: piped, `research ask` and
`research chat` write nothing of the unchecked partial answer to stdout, only the error on
stderr (docs/chat.md: piped output is the verified answer, written once it is complete)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from tests.daemon_fixture import DaemonHandle
from tests.fakes.servers import FakeServer, Reply, openai_stream

PARTIAL = "Green tea steeps for two minutes [3]"


def _broken() -> Reply:
    """Two chunks of an answer, then the connection drops (no finish, no [DONE])."""
    chunks = openai_stream([PARTIAL, " at eighty deg"], done=False, usage=None)
    return Reply(chunks=chunks, content_type="text/event-stream", cut=True)


def _configure(daemon_env: DaemonHandle, fake: FakeServer, notes: Path) -> None:
    notes.mkdir()
    (notes / "tea.md").write_text("# Tea\n\nGreen tea steeps for two minutes at eighty degrees.\n")
    (daemon_env.home / "config.toml").write_text(
        f"[memory]\npaths = [{json.dumps(str(notes))}]\nwatch = false\n\n"
        f'[llm]\nprovider = "openai"\nmodel = "local"\ncontext_tokens = 4096\nmax_retries = 0\n'
        f'base_url = "{fake.url}/v1"\n'
    )


async def test_piped_ask_and_chat_write_nothing_of_a_broken_answer(
    tmp_path: Path, daemon_env: DaemonHandle, fake_server: FakeServer
) -> None:
    fake_server.queue("/v1/chat/completions", _broken(), _broken(), _broken())
    _configure(daemon_env, fake_server, tmp_path / "notes")
    await asyncio.to_thread(daemon_env.start)
    try:
        asked = await asyncio.to_thread(daemon_env.cli, "ask", "How long does green tea steep?")
        assert asked.returncode == 1, asked.stdout + asked.stderr
        assert asked.stdout == ""  # not the partial text, not its [3]
        errors = [line for line in asked.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith("Error: "), asked.stderr
        assert PARTIAL not in asked.stderr and "Traceback" not in asked.stderr

        as_json = await asyncio.to_thread(daemon_env.cli, "ask", "--json", "Green tea?")
        assert as_json.returncode == 1 and as_json.stdout == ""

        chatted = await asyncio.to_thread(
            daemon_env.cli, "chat", input="How long does green tea steep?\n/exit\n"
        )
        assert chatted.returncode == 0, chatted.stderr
        assert "Green tea steeps" not in chatted.stdout and "[3]" not in chatted.stdout
        assert "Error:" in chatted.stderr and "Session kept" in chatted.stdout
    finally:
        await asyncio.to_thread(daemon_env.stop)
    assert len([r for r in fake_server.requests if r.path == "/v1/chat/completions"]) == 3


def test_on_a_terminal_the_partial_text_stays_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    from localresearch.cli.ask import MarkdownStream

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=80)
    monkeypatch.setattr("localresearch.cli.ask.console", lambda: terminal)
    for tty in (True, False):
        view = MarkdownStream()
        view.tty = tty
        with view:
            view.add(PARTIAL)
            view.stop()  # an error event: the answer ends unfinished
    assert "Green tea steeps for two minutes" in screen.getvalue()  # the terminal's live view
    assert capsys.readouterr().out == ""  # piped: nothing
