"""`research sessions`: list, show and delete chat sessions."""

from __future__ import annotations

import click

from localresearch.cli.common import api_errors, console, get_client, json_option, print_json


@click.group(epilog="Example: research sessions list")
def sessions() -> None:
    """Chat sessions (multi-turn conversations kept by the daemon)."""


@sessions.command("list", epilog="Example: research sessions list --limit 10 --json")
@click.option("--limit", default=50, show_default=True, help="Most sessions to show.")
@json_option
@api_errors
def list_sessions(limit: int, as_json: bool) -> None:
    """Sessions, most recently used first."""
    result = get_client().sessions(limit=limit)
    if as_json:
        print_json(result)
        return
    if not result.sessions:
        console().print("No sessions yet. Start one with: research chat")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("id", "updated", "messages", "title"):
        table.add_column(column)
    for s in result.sessions:
        table.add_row(s.id, s.updated_at[:19], str(s.message_count), s.title or "-")
    console().print(table)
    if result.total > len(result.sessions):
        console().print(f"({len(result.sessions)} of {result.total})")


@sessions.command("show", epilog="Example: research sessions show 3f2a…")
@click.argument("session_id")
@json_option
@api_errors
def show_session(session_id: str, as_json: bool) -> None:
    """A session with its messages."""
    session = get_client().session(session_id)
    if as_json:
        print_json(session)
        return
    out = console()
    out.print(f"[bold]{session.title or session.id}[/]  [dim]{session.id}[/]", markup=True)
    for m in session.messages:
        who = "you" if m.role == "user" else (m.model or m.role)
        out.print(f"\n[bold cyan]{who}[/] [dim]{m.created_at[:19]}[/]", markup=True)
        out.print(m.content, markup=False, highlight=False)


@sessions.command("delete", epilog="Example: research sessions delete 3f2a…")
@click.argument("session_id")
@json_option
@api_errors
def delete_session(session_id: str, as_json: bool) -> None:
    """Delete a session and its messages."""
    result = get_client().delete_session(session_id)
    if as_json:
        print_json(result)
    else:
        console().print(f"Deleted session {session_id}")
