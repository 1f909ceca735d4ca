"""`research deep --interactive` and `research deep-sessions`: the research-sessions API from
the terminal (questions asked, plan shown for approval, progress, report)."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

import click

from localresearch.cli.common import api_errors, console, err_console, get_client, json_option
from localresearch.cli.ids import SESSION_ID_LENGTH, add_id_column, resolve_id
from localresearch.cli.pipes import print_markdown, text_console

if TYPE_CHECKING:
    from localresearch.client import Client


def _show_plan_for_approval(markdown: str) -> None:
    """On stderr, beside the prompts: stdout gets only the report."""
    from rich.markdown import Markdown

    err_console().print(Markdown(markdown))


def _session_id(client: Client, given: str) -> str:
    """The session `given` names: a whole ID or a unique prefix of one."""
    return resolve_id(
        given,
        lambda: (s.id for s in client.research_sessions()),
        "research session",
        whole=SESSION_ID_LENGTH,
    )


def _follow(client: Client, session_id: str) -> None:
    """Progress lines from the session's stream until its final report or error."""
    for _id, name, data in client.research_session_events(session_id):
        if name == "progress" and data.get("phase") == "executing":
            err_console().print(f"[dim]{data.get('progress', 0):>3}%[/] {data.get('message', '')}")
        elif name in ("final-report", "error"):
            return


def interactive(topic: str, as_json: bool) -> None:
    """Ask the clarifying questions, agree on the plan, run it, show the report."""
    from localresearch.cli.common import print_json

    client = get_client()
    session_id = client.research_session_create().session_id
    asked = client.research_session_questions(session_id, topic)
    out = err_console()
    out.print(f"[bold]A few questions before researching[/] ({session_id}):")
    answers = []
    for line in asked.questions.splitlines():
        answer = click.prompt(line, default="", show_default=False, err=True).strip()
        if answer:
            answers.append(answer)
    client.research_session_feedback(session_id, "\n".join(answers))
    plan = client.research_session_plan(session_id).report_plan
    while True:
        if not as_json:
            _show_plan_for_approval(plan)
        choice = click.prompt(
            "Accept the plan? [y]es, [e]dit (say what to change), [q]uit",
            default="y",
            err=True,
        ).strip()
        if choice.lower().startswith("q"):
            out.print(f"Stopped; the session stays until it expires: {session_id}")
            return
        if not choice.lower().startswith("e"):
            break
        change = click.prompt("What should the plan change", err=True).strip()
        if change:
            client.research_session_refine(session_id, change, "planning")
            plan = client.research_session(session_id).report_plan
    follower = threading.Thread(target=_follow, args=(client, session_id), daemon=True)
    follower.start()
    result = client.research_session_execute(session_id)
    follower.join(timeout=2.0)
    if as_json:
        print_json(client.research_session(session_id))
    else:
        print_markdown(result.final_report)
    if result.phase == "error":
        sys.exit(1)


@click.group("deep-sessions", epilog="Example: research deep-sessions list")
def deep_sessions() -> None:
    """Research sessions (research deep --interactive, /api/research/sessions): list, show,
    delete. Sessions expire an hour after creation unless extended."""


@deep_sessions.command("list", epilog="Example: research deep-sessions list --json")
@json_option
@api_errors
def list_command(as_json: bool) -> None:
    """Live research sessions, newest first."""
    from localresearch.cli.common import print_json

    sessions = get_client().research_sessions()
    if as_json:
        print_json(sessions)
        return
    if not sessions:
        console().print('No research sessions. Start one: research deep --interactive "topic"')
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    add_id_column(table, "ID", (s.id for s in sessions))
    for column in ("Phase", "Created", "Expires"):
        table.add_column(column, no_wrap=True)
    table.add_column("Topic", min_width=16, overflow="fold")
    for s in sessions:
        table.add_row(s.id, s.phase, _when(s.created_at), _when(s.expires_at), s.topic)
    console().print(table)


def _when(timestamp: str) -> str:
    """2026-12-02T13:28:42Z as 12-02 13:28 (the full time is in --json)."""
    return timestamp[5:16].replace("T", " ")


@deep_sessions.command("show", epilog="Example: research deep-sessions show 3f2a")
@click.argument("session_id")
@json_option
@api_errors
def show(session_id: str, as_json: bool) -> None:
    """A session: its questions, feedback, plan and report. SESSION_ID may be a unique prefix."""
    from localresearch.cli.common import print_json

    client = get_client()
    detail = client.research_session(_session_id(client, session_id))
    if as_json:
        print_json(detail)
        return
    out = text_console()
    out.print(f"[bold]{detail.topic or '(no topic yet)'}[/] · {detail.phase} · {detail.progress}%")
    out.print(f"[dim]created {detail.created_at} · expires {detail.expires_at}[/]")
    for title, text in (("Questions", detail.questions), ("Feedback", detail.feedback)):
        if text:
            out.print(f"\n[bold]{title}[/]\n{text}")
    if detail.report_plan:
        print_markdown(detail.report_plan)
    if detail.final_report:
        print_markdown(detail.final_report)


@deep_sessions.command("delete", epilog="Example: research deep-sessions delete 3f2a")
@click.argument("session_id")
@api_errors
def delete(session_id: str) -> None:
    """Delete a session with its plan, results, events and reports. SESSION_ID may be a unique
    prefix."""
    client = get_client()
    session_id = _session_id(client, session_id)
    client.research_session_delete(session_id)
    console().print(f"Deleted {session_id}")
