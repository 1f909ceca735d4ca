"""`research ask`: one question, answered from your notes, streamed as Markdown with sources."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from localresearch.cli.arguments import question_text
from localresearch.cli.common import (
    api_errors,
    client_starting_daemon,
    console,
    err_console,
    fail,
    json_option,
    refusals_as_usage_errors,
    start_daemon_client,
)
from localresearch.cli.pipes import text_console

if TYPE_CHECKING:
    from collections.abc import Iterator

    from localresearch.client import Client
    from localresearch.events import Event


def location(citation: dict[str, Any]) -> str:
    """`file:line` or `file:start-end`, the form editors and terminals open."""
    start, end = citation.get("line_start"), citation.get("line_end")
    name = citation.get("file")
    if citation.get("page"):  # a PDF: the page, then the lines within it
        name = f"{name} p. {citation['page']}"
    if end and end != start:
        return f"{name}:{start}-{end}"
    return f"{name}:{start}"


_EVIDENCE_WHY = {
    "unsupported": "most of the model's answer is not in your notes",
    "strongest_uncited": "the model's answer does not cite the strongest passage",
}


def print_sources(
    citations: list[dict[str, Any]],
    sentences: list[dict[str, Any]] | None = None,
    evidence: dict[str, Any] | None = None,
) -> None:
    """The sources, always (saying so when there are none), then why a paragraph was quoted
    from the notes, then the sentences no source supports, flagged so a reader does not take
    them for what the notes say."""
    from rich.text import Text

    out = text_console()  # piped: never wrapped
    out.print()
    if not citations:
        out.print("[bold]Sources:[/] none (no passage of your notes supports this answer)")
    else:
        out.print("[bold]Sources[/]", markup=True)
    for c in citations:
        out.print(f"  [{c.get('n', '?')}] {location(c)}", markup=False, highlight=False)
    if evidence:
        why = _EVIDENCE_WHY.get(str(evidence.get("reason")), "the model's answer is not backed")
        marks = ", ".join(f"[{n}]" for n in evidence.get("citations") or [])
        out.print(
            Text(f"  “Quoted from your notes” ({marks}) is your notes' own words: {why}.", "dim")
        )
    flagged = [s for s in sentences or [] if s.get("claim", True) and not s.get("supported", True)]
    if flagged:
        out.print()
        out.print("[yellow]Not supported by any source:[/]", markup=True)
        for s in flagged:
            out.print(Text(f"  ? {s.get('text', '')}", style="dim"))


def answer_events(
    text: str,
    session_id: str | None,
    model: str | None,
    include_memory: bool,
    client: Client | None = None,
) -> Iterator[Event]:
    """The answer's events, starting the daemon first if nothing answers (`client`: one
    already found by client_starting_daemon)."""
    from localresearch.client import DaemonNotRunning

    options: dict[str, Any] = {
        "session_id": session_id,
        "model": model,
        "include_memory": include_memory,
    }
    events = (client or client_starting_daemon()).chat_stream(text, **options)
    try:
        first = next(events)
    except DaemonNotRunning:
        events = start_daemon_client().chat_stream(text, **options)
        first = next(events)
    except StopIteration:
        return
    yield first
    yield from events


class Waiting:
    """A spinner with the seconds since the question left, until the first token arrives."""

    def __init__(self, label: str = "Thinking") -> None:
        from rich.spinner import Spinner

        self.started = time.monotonic()
        self.label = label
        self.spinner = Spinner("dots", style="cyan")

    def __rich__(self) -> Any:
        from rich.text import Text

        elapsed = time.monotonic() - self.started
        self.spinner.text = Text(f"{self.label}… {elapsed:.1f} s", style="dim")
        return self.spinner


class MarkdownStream:
    """Shows the answer as it arrives: live Markdown on a terminal (a spinner with the elapsed
    time until the first token), redrawn as verified at the end. Piped, the verified answer is
    written once it is complete, so what a script reads carries the corrected citations; an
    answer that fails or is cancelled before it is complete writes nothing there."""

    def __init__(self) -> None:
        self.text = ""
        self.live: Any = None
        self.tty = sys.stdout.isatty()
        self.written = False  # piped: the answer went out

    def __enter__(self) -> MarkdownStream:
        if self.tty:
            from rich.live import Live

            self.live = Live(
                Waiting(),
                console=console(),
                refresh_per_second=12,
                vertical_overflow="visible",
            )
            self.live.__enter__()
        return self

    def add(self, text: str) -> None:
        self.text += text
        if self.live is not None:
            from rich.markdown import Markdown

            self.live.update(Markdown(self.text))

    def final(self, text: str) -> None:
        """The answer as verified (citation markers corrected) replaces what streamed."""
        if text:
            self.text = text
        if self.live is not None:
            from rich.markdown import Markdown

            self.live.update(Markdown(self.text))
        else:
            self._write()

    def _write(self) -> None:
        if self.written or not self.text:
            return
        self.written = True
        sys.stdout.write(self.text if self.text.endswith("\n") else self.text + "\n")
        sys.stdout.flush()

    def stop(self) -> None:
        """End the live view (before an error is printed below it). Piped, nothing is written:
        the text that came so far was never checked (its [n] may name no listed source)."""
        if self.live is not None:
            if not self.text:
                self.live.update("")  # no spinner left behind
            self.live.__exit__(None, None, None)
            self.live = None

    def __exit__(self, *exc: object) -> None:
        self.stop()


@click.command(
    epilog='Examples:\n\n  research ask "what do my notes say about sqlite?"\n\n'
    '  research ask --json --no-memory "hello"',
)
@click.argument("question", nargs=-1, required=True, callback=question_text)
@click.option(
    "--session", "session_id", metavar="ID", help="Continue a chat session (ID or unique prefix)."
)
@click.option("--model", metavar="M", help="Model override: provider/model, provider or model.")
@click.option("--no-memory", is_flag=True, help="Do not search your notes for context.")
@json_option
@api_errors
def ask(
    question: str,
    session_id: str | None,
    model: str | None,
    no_memory: bool,
    as_json: bool,
) -> None:
    """Ask a question; the answer streams in, with its sources as file:line.

    Offline by default: the builtin engine answers from your notes with citations. Starts the
    daemon if it is not running.
    """
    client = None
    if session_id is not None:
        from localresearch.cli.sessions import chat_session_id

        client = client_starting_daemon()  # one probe: the answer is asked on it too
        session_id = chat_session_id(client, session_id)
    with refusals_as_usage_errors():
        _answer(question, session_id, model, no_memory, as_json, client)


def _answer(
    text: str,
    session_id: str | None,
    model: str | None,
    no_memory: bool,
    as_json: bool,
    client: Client | None = None,
) -> None:
    events = answer_events(text, session_id, model, not no_memory, client)
    done: dict[str, Any] | None = None
    if as_json:
        for event in events:
            if event.type == "error":
                fail(_error_text(event.data))
            if event.type == "done":
                done = event.data
        if done is None:
            fail("the answer stream ended early")
        from localresearch.cli.common import print_json

        print_json(
            {
                "answer": done.get("response", ""),
                "citations": done.get("citations", []),
                "model": done.get("model"),
                "tokens": done.get("tokens"),
                "tools_used": done.get("tools_used", []),
                "session_id": done.get("session_id"),
                "sentences": done.get("sentences", []),
                "evidence": done.get("evidence"),
            }
        )
        return
    with MarkdownStream() as view:
        for event in events:
            if event.type == "delta":
                view.add(str((event.data or {}).get("text", "")))
            elif event.type == "tool_call":
                name = (event.data or {}).get("name", "?")
                err_console().print(f"[dim]→ {name}[/]", markup=True)
            elif event.type == "error":
                view.stop()
                fail(_error_text(event.data))
            elif event.type == "done":
                done = event.data
                view.final(str((done or {}).get("response", "")))
    if done is None:
        fail("the answer stream ended early (is the daemon shutting down?)")
    print_sources(done.get("citations") or [], done.get("sentences"), done.get("evidence"))


def _error_text(data: Any) -> str:
    if isinstance(data, dict):
        code = data.get("code")
        return f"{data.get('message', 'error')}" + (f" [{code}]" if code else "")
    return str(data)
