"""`research deep`: start a research job and follow it live (Ctrl-C detaches, the job goes on)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from localresearch.cli.arguments import question_text
from localresearch.cli.common import api_errors, err_console, get_client, json_option

if TYPE_CHECKING:
    from rich.console import RenderableType

    from localresearch.client import Client
    from localresearch.events import Event

RECONNECT_TRIES = 30


@dataclass
class DimensionRow:
    name: str
    state: str = "waiting"
    sources: int = 0
    finding: str = ""


@dataclass
class JobView:
    """What the live display shows, built from the job's events."""

    job_id: str
    phase: str = "scope"
    dimensions: dict[str, DimensionRow] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)
    iteration: int = 0
    step: str = "Scoping the question"
    notes: list[str] = field(default_factory=list)  # parts the builtin engine did instead
    started: float = field(default_factory=time.monotonic)

    def current_step(self) -> str:
        """What the job is doing now, with the time it has run: a model may think for minutes."""
        return f"{self.step}… {time.monotonic() - self.started:.0f} s"

    def apply(self, event: Event) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        if event.type == "fallback":
            self.notes.append(f"{_part(data)}: builtin engine used")
        if event.type == "scope_complete":
            self.phase = "research"
            for name in data.get("dimensions", []):
                self.dimensions.setdefault(name, DimensionRow(name))
        elif event.type == "dimension_started":
            row = self.dimensions.setdefault(data["dimension"], DimensionRow(data["dimension"]))
            row.state = "researching"
        elif event.type == "dimension_source":
            row = self.dimensions.setdefault(data["dimension"], DimensionRow(data["dimension"]))
            row.sources += 1
        elif event.type == "dimension_complete":
            row = self.dimensions.setdefault(data["dimension"], DimensionRow(data["dimension"]))
            row.state = "done"
            row.sources = int(data.get("sourceCount", row.sources))
            row.finding = str(data.get("keyFinding", ""))
        elif event.type == "evaluate_started":
            self.phase = "evaluate"
            self.iteration = int(data.get("iteration", 0))
        elif event.type == "evaluate_complete":
            self.phase = "research"
            self.gaps = list(data.get("gaps", []))
            for name in data.get("newDimensions", []):
                self.dimensions.setdefault(name, DimensionRow(name))
        elif event.type == "synthesis_started":
            self.phase = "synthesis"
        self._step(event.type, data)  # after the rows: "(1/2 done)" counts this event

    def _step(self, kind: str, data: dict[str, Any]) -> None:
        rows = self.dimensions.values()
        if kind == "scope_started":
            self.step = "Scoping the question"
        elif kind in ("scope_complete", "dimension_started", "dimension_complete"):
            done = sum(1 for r in rows if r.state == "done")
            self.step = f"Researching dimensions ({done}/{len(self.dimensions)} done)"
            if kind == "dimension_started":
                self.step += f": {data.get('dimension', '')}"
        elif kind == "evaluate_started":
            self.step = f"Looking for gaps (round {data.get('iteration', 1)})"
        elif kind == "synthesis_started":
            self.step = "Writing the report"

    def render(self, width: int = 100) -> RenderableType:
        """The progress table for a terminal `width` columns wide: the dimension keeps up to a
        third of it (wrapping if longer); the key finding gets the rest, cut with an ellipsis."""
        from rich.table import Table

        table = Table(title=f"Research {self.job_id} — {self.phase}", title_justify="left")
        longest = max((len(name) for name in self.dimensions), default=9)
        dim_width = max(9, min(longest, max(14, width // 3)))
        # 4 columns: 5 rules + 2 spaces of padding each; "State" 5 and "Sources" 7 wide.
        finding_width = max(8, min(60, width - 13 - dim_width - 5 - 7))
        table.add_column("Dimension", width=dim_width, overflow="fold")
        table.add_column("State", width=5, no_wrap=True)
        table.add_column("Sources", width=7, justify="right", no_wrap=True)
        table.add_column("Key finding", width=finding_width, overflow="ellipsis", no_wrap=True)
        marks = {"waiting": "[dim]waiting[/]", "researching": "[yellow]…[/]", "done": "[green]✓[/]"}
        for row in self.dimensions.values():
            table.add_row(row.name, marks[row.state], str(row.sources), row.finding)
        caption = [self.current_step()]
        if self.gaps:
            caption.append(f"Gaps (round {self.iteration}): " + "; ".join(self.gaps[:3]))
        if self.notes:
            caption.append("The model's reply was unusable for " + "; ".join(self.notes[-3:]))
        table.caption = "\n".join(caption)
        return table

    def __rich__(self) -> RenderableType:
        """Redrawn on each refresh of the live display, so the elapsed time moves."""
        return self.render(err_console().width)


def _part(data: dict[str, Any]) -> str:
    return str(data.get("part", data.get("step", "?")))


def fallback_line(data: dict[str, Any]) -> str:
    """A `fallback` that arrives once the report streams (the model's report was rejected):
    said on stderr where it happens, since the progress table is no longer redrawn."""
    reason = f" ({data['reason']})" if data.get("reason") else ""
    if _part(data) == "report":
        return (
            f"The model's report was not backed by its sources{reason}: "
            "the builtin engine wrote the report from the findings, below."
        )
    return f"The model's reply was unusable for {_part(data)}{reason}: builtin engine used."


def events_with_resume(client: Client, job_id: str, after: int = 0) -> Any:
    """The job's events; if the daemon restarts mid-stream, reconnect and resume after the last."""
    import http.client

    from localresearch.client import DaemonNotRunning, DaemonStopped

    last = after
    tries = 0
    while True:
        try:
            for event in client.research_events(job_id, last or None):
                tries = 0
                last = event.id or last
                yield event
                if event.type == "done":
                    return
            # The stream ended without `done`: the daemon is stopping; resume when it is back.
        except (DaemonNotRunning, DaemonStopped, OSError, http.client.HTTPException):
            pass
        tries += 1
        if tries > RECONNECT_TRIES:
            raise DaemonNotRunning(client.base_url)
        time.sleep(1.0)


def follow(client: Client, job_id: str, *, after: int = 0) -> str:
    """Show live progress on stderr, then stream the report to stdout; returns the job's final
    status. stdout holds only the report (`research deep "q" > report.md`); when stderr is not
    a terminal, the progress table is written there once, as it stood when the report began."""
    from rich.live import Live
    from rich.text import Text

    out = err_console()
    view = JobView(job_id)
    final = "running"
    streaming = False
    live = Live(view, console=out, refresh_per_second=4, transient=False)
    started = False  # the table appears with the first event: an unknown id draws nothing
    try:
        for event in events_with_resume(client, job_id, after):
            if not started:
                live.start()
                started = True
            view.apply(event)
            if event.type == "synthesis_delta":
                if not streaming:
                    live.refresh()
                    live.stop()
                    streaming = True
                    out.print()
                click.echo(event.data.get("text", ""), nl=False)
                sys.stdout.flush()
            elif event.type == "fallback" and streaming:
                sys.stdout.flush()
                out.print(Text(fallback_line(event.data), style="yellow"))
            elif event.type == "error":
                err_console().print(f"[bold red]Research failed:[/] {event.data.get('message')}")
            elif event.type == "done":
                final = str(event.data.get("status", "complete"))
            elif not streaming:
                live.refresh()
    finally:
        if started and not streaming:
            live.stop()
    if final == "cancelled":
        out.print(f"Cancelled. Partial report: research jobs export {job_id}")
    return final


def detach_message(job_id: str) -> str:
    return (
        f"\nDetached; research job {job_id} keeps running in the daemon.\n"
        f"  re-attach: research jobs watch {job_id}\n"
        f"  cancel:    research jobs cancel {job_id}\n"
        f"  report:    research jobs export {job_id}"
    )


@click.command(
    "deep",
    epilog='Example: research deep "how does B12 deficiency affect homocysteine?" --dimensions 4',
)
@click.argument("question", callback=question_text)
@click.option("--dimensions", "-d", type=click.IntRange(1, 6), help="Dimensions to research.")
@click.option("--rounds", "-r", type=click.IntRange(0, 5), help="Gap-evaluation rounds.")
@click.option("--detach", is_flag=True, help="Start the job and print its id without following.")
@click.option(
    "--interactive",
    "-i",
    is_flag=True,
    help="Answer clarifying questions and approve the plan first (a research session).",
)
@json_option
@api_errors
def deep(
    question: str,
    dimensions: int | None,
    rounds: int | None,
    detach: bool,
    interactive: bool,
    as_json: bool,
) -> None:
    """Research QUESTION in depth: scope it into dimensions, research each from your memory
    (and the web if configured), find gaps, then write a cited report.

    Shows each dimension's progress live, then streams the report. Ctrl-C detaches: the job keeps
    running in the daemon. With --interactive, the daemon first asks clarifying questions about
    QUESTION and shows its research plan for approval (accept, or say what to change)."""
    from localresearch.cli.common import print_json

    if interactive:
        from localresearch.cli.deep_sessions import interactive as run_interactive

        run_interactive(question, as_json)
        return
    client = get_client()
    started = client.research_start(question, dimensions=dimensions, rounds=rounds)
    job_id = started["researchId"]
    if detach:
        if as_json:
            print_json(started)
        else:
            click.echo(job_id)
        return
    try:
        if as_json:
            fallbacks = [
                event.data
                for event in events_with_resume(client, job_id)
                if event.type == "fallback"
            ]
            snapshot = client.research_status(job_id)
            # The parts the builtin engine did in the model's place, as the events told them.
            print_json({**snapshot.to_dict(), "fallbacks": fallbacks})
            if snapshot["status"] == "error":
                sys.exit(1)
            return
        status = follow(client, job_id)
    except KeyboardInterrupt:
        err_console().print(detach_message(job_id))
        return
    if status == "error":
        sys.exit(1)
