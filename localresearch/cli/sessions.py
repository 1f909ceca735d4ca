"""`research sessions`: list, show and delete chat sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from localresearch.cli.common import api_errors, console, get_client, json_option, print_json
from localresearch.cli.ids import SESSION_ID_LENGTH, add_id_column, resolve_id
from localresearch.cli.pipes import text_console

if TYPE_CHECKING:
    from collections.abc import Iterator

    from localresearch.client import Client


def _session_ids(client: Client) -> Iterator[str]:
    offset = 0
    while True:
        page = client.sessions(limit=200, offset=offset)
        yield from (s.id for s in page.sessions)
        offset += len(page.sessions)
        if not page.sessions or offset >= page.total:
            return


def chat_session_id(client: Client, given: str) -> str:
    """The chat session `given` names: a whole ID or a unique prefix of one."""
    return resolve_id(given, lambda: _session_ids(client), "chat session", whole=SESSION_ID_LENGTH)


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
    add_id_column(table, "id", (s.id for s in result.sessions))
    table.add_column("updated", no_wrap=True)
    table.add_column("messages", no_wrap=True)
    table.add_column("title", min_width=16, overflow="fold")
    for s in result.sessions:
        updated = s.updated_at[:16].replace("T", " ")
        table.add_row(s.id, updated, str(s.message_count), s.title or "-")
    console().print(table)
    if result.total > len(result.sessions):
        console().print(f"({len(result.sessions)} of {result.total})")


@sessions.command("show", epilog="Example: research sessions show 3f2a")
@click.argument("session_id")
@json_option
@api_errors
def show_session(session_id: str, as_json: bool) -> None:
    """A session with its messages. SESSION_ID may be a unique prefix."""
    client = get_client()
    session = client.session(chat_session_id(client, session_id))
    if as_json:
        print_json(session)
        return
    out = text_console()  # piped: each message as is, never wrapped
    out.print(f"[bold]{session.title or session.id}[/]  [dim]{session.id}[/]", markup=True)
    for m in session.messages:
        who = "you" if m.role == "user" else (m.model or m.role)
        out.print(f"\n[bold cyan]{who}[/] [dim]{m.created_at[:19]}[/]", markup=True)
        out.print(m.content, markup=False, highlight=False)


@sessions.command("delete", epilog="Example: research sessions delete 3f2a")
@click.argument("session_id")
@json_option
@api_errors
def delete_session(session_id: str, as_json: bool) -> None:
    """Delete a session and its messages. SESSION_ID may be a unique prefix."""
    client = get_client()
    session_id = chat_session_id(client, session_id)
    result = client.delete_session(session_id)
    if as_json:
        print_json(result)
    else:
        console().print(f"Deleted session {session_id}")
