"""`research jobs`: list, show, watch, cancel and export deep research jobs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from localresearch.cli.common import (
    api_errors,
    console,
    err_console,
    fail,
    get_client,
    json_option,
    print_json,
)
from localresearch.cli.ids import add_id_column, resolve_id
from localresearch.cli.pipes import print_markdown, text_console

if TYPE_CHECKING:
    from collections.abc import Iterator

    from localresearch.client import Client


@click.group("jobs", epilog="Example: research jobs list --status running")
def jobs() -> None:
    """Deep research jobs kept by the daemon (they survive restarts)."""


def _job_ids(client: Client) -> Iterator[str]:
    offset: int | None = 0
    while offset is not None:
        page = client.research_list(limit=200, offset=offset)
        yield from (job.research_id for job in page.jobs)
        offset = page.next_offset


def _job_id(client: Client, given: str) -> str:
    """The job `given` names: a whole ID or a unique prefix of one (with or without `res_`)."""
    if given.startswith("res_") and len(given) >= 20:
        return given  # a whole ID: no need to list the jobs
    known = list(_job_ids(client))
    if not any(i.startswith(given) for i in known) and any(
        i.startswith("res_" + given) for i in known
    ):
        given = "res_" + given
    return resolve_id(given, lambda: known, "research job")


@jobs.command("list", epilog="Example: research jobs list --limit 50 --json")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option(
    "--status",
    type=click.Choice(["queued", "running", "complete", "error", "cancelled"]),
    help="Only jobs with this status.",
)
@json_option
@api_errors
def list_jobs(limit: int, offset: int, status: str | None, as_json: bool) -> None:
    """Jobs, newest first."""
    page = get_client().research_list(limit=limit, offset=offset, status=status)
    if as_json:
        print_json(page)
        return
    if not page.jobs:
        console().print('No research jobs yet. Start one: research deep "your question"')
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    add_id_column(table, "ID", (job.research_id for job in page.jobs))
    for column in ("Status", "Dims", "Src", "Created"):
        table.add_column(column, no_wrap=True)
    table.add_column("Question", min_width=16, overflow="fold")
    for job in page.jobs:
        table.add_row(
            job.research_id,
            job.status,
            f"{job.dimensions_complete}/{job.dimensions_total}",
            str(job.source_count),
            job.created_at[5:16].replace("T", " "),
            job.query,
        )
    console().print(table)
    if page.next_offset is not None:
        console().print(f"More: research jobs list --offset {page.next_offset}")


@jobs.command("show", epilog="Example: research jobs show res_0123abcd --json")
@click.argument("research_id")
@json_option
@api_errors
def show(research_id: str, as_json: bool) -> None:
    """A job's status snapshot (and its report when complete). RESEARCH_ID may be a unique
    prefix."""
    client = get_client()
    snapshot = client.research_status(_job_id(client, research_id))
    if as_json:
        print_json(snapshot)
        return
    out = text_console()
    state = "queued" if snapshot.get("queued") else snapshot["status"]  # the spec says running
    out.print(f"[bold]{snapshot['researchId']}[/]  {state} ({snapshot['phase']})")
    out.print(f"Question:   {snapshot['query']}", markup=False)
    out.print(
        f"Dimensions: {snapshot['dimensionsComplete']}/{snapshot['dimensionsTotal']}   "
        f"Sources: {snapshot['sourceCount']}   Created: {snapshot['createdAt']}"
    )
    if snapshot.get("error"):
        out.print(f"[red]Error:[/] {snapshot['error']}")
    report = snapshot.get("report") or snapshot.get("partialReport")
    if report:
        out.print()
        print_markdown(report)


@jobs.command("watch", epilog="Example: research jobs watch res_0123abcd --json")
@click.argument("research_id")
@json_option
@api_errors
def watch(research_id: str, as_json: bool) -> None:
    """Follow a job live (its history first); Ctrl-C detaches. With --json, one event per line.
    RESEARCH_ID may be a unique prefix."""
    from localresearch.cli.deep import detach_message, events_with_resume, follow
    from localresearch.client import DaemonNotRunning

    client = get_client()
    try:  # an unknown id fails here, before anything is drawn
        research_id = _job_id(client, research_id)
        client.research_status(research_id)
    except DaemonNotRunning:
        pass  # it may be restarting: the stream below waits for it
    try:  # a daemon restart is ridden out
        if as_json:
            status = "running"
            for event in events_with_resume(client, research_id):
                click.echo(json.dumps({"id": event.id, **event.to_dict()}, ensure_ascii=False))
                if event.type == "done" and isinstance(event.data, dict):
                    status = str(event.data.get("status", "complete"))
        else:
            status = follow(client, research_id)
    except KeyboardInterrupt:
        err_console().print(detach_message(research_id))
        return
    if status == "error":
        sys.exit(1)


@jobs.command("cancel", epilog="Example: research jobs cancel res_0123abcd")
@click.argument("research_id")
@api_errors
def cancel(research_id: str) -> None:
    """Stop a job now (a model call in flight is abandoned); its partial report is kept.
    RESEARCH_ID may be a unique prefix."""
    client = get_client()
    research_id = _job_id(client, research_id)
    # Asked before the cancel: a running job is cancelled at once, so afterwards every job
    # would look finished.
    status = client.research_status(research_id)["status"]
    client.research_cancel(research_id)
    if status in ("complete", "error", "cancelled"):
        console().print(f"{research_id} already finished ({status}).")
    else:
        console().print(f"Cancelling {research_id}: what finished is kept as a partial report.")


@jobs.command("export", epilog="Example: research jobs export res_0123abcd --format html -o r.html")
@click.argument("research_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "html", "json"]),
    default="md",
    show_default=True,
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File.")
@api_errors
def export(research_id: str, fmt: str, output: Path | None) -> None:
    """Write a job's report (complete, or partial if cancelled) to stdout or a file.
    RESEARCH_ID may be a unique prefix."""
    client = get_client()
    text = client.research_report(_job_id(client, research_id), fmt)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    err_console().print(f"Wrote {output} ({len(text.encode())} bytes)")
