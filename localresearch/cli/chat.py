"""`research chat`: an interactive session over the daemon's WebSocket.

Ctrl-C cancels the answer being written, not the session; Ctrl-D or /exit leaves.
"""

from __future__ import annotations

import json
from typing import Any

import click

from localresearch.cli.ask import MarkdownStream, print_sources
from localresearch.cli.common import api_errors, client_starting_daemon, console, err_console, fail

HELP = "Type a question. Ctrl-C cancels an answer; /exit or Ctrl-D quits; /new starts a session."


def _render_answer(ws: Any) -> None:
    """Print events until the answer ends; Ctrl-C sends a cancel and keeps the socket. On a
    terminal a spinner shows the elapsed time until the first token, and the answer is redrawn
    as verified when it ends."""
    with MarkdownStream() as view:
        done = _events(ws, view)
    if done is not None:
        print_sources(done.get("citations") or [], done.get("sentences"), done.get("evidence"))


def _events(ws: Any, view: MarkdownStream) -> dict[str, Any] | None:
    cancelled = False
    while True:
        try:
            raw = ws.recv(timeout=0.25)
        except TimeoutError:
            continue
        except KeyboardInterrupt:
            if not cancelled:
                ws.send(json.dumps({"type": "cancel"}))
                cancelled = True
            continue
        event = json.loads(raw)
        kind, data = event.get("type"), event.get("data") or {}
        if kind == "delta":
            view.add(str(data.get("text", "")))
        elif kind == "tool_call":
            err_console().print(f"[dim]→ {data.get('name', '?')}[/]", markup=True)
        elif kind == "done":
            view.final(str(data.get("response", "")))
            return dict(data)
        elif kind == "error":
            view.stop()
            if data.get("code") == "cancelled":
                err_console().print("(answer cancelled)")
            else:
                err_console().print(f"[red]Error:[/] {data.get('message')}", markup=True)
            return None


@click.command(epilog="Example: research chat --session 3f2a… --model ollama/llama3.2")
@click.option("--session", "session_id", metavar="ID", help="Resume a session (default: new).")
@click.option("--model", metavar="M", help="Model override: provider/model, provider or model.")
@click.option("--no-memory", is_flag=True, help="Do not search your notes for context.")
@api_errors
def chat(session_id: str | None, model: str | None, no_memory: bool) -> None:
    """Chat interactively; the conversation is kept as a session."""
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    client = client_starting_daemon()
    session = client.session(session_id) if session_id else client.create_session()
    sid = session["id"]
    headers = {"Authorization": f"Bearer {client.api_key}"} if client.api_key else None
    try:
        ws = connect(client.websocket_url(), additional_headers=headers, open_timeout=10)
    except (OSError, WebSocketException) as exc:
        fail(f"could not open the chat socket at {client.websocket_url()}: {exc}", code=3)
    out = console()
    out.print(f"Session [bold]{sid}[/]. {HELP}", markup=True)
    with ws:
        while True:
            try:
                line = input("you> ")
            except EOFError:
                out.print()
                break
            except KeyboardInterrupt:
                out.print("\n(Ctrl-D or /exit to quit)")
                continue
            text = line.strip()
            if not text:
                continue
            if text in ("/exit", "/quit"):
                break
            if text == "/new":
                sid = client.create_session()["id"]
                out.print(f"New session [bold]{sid}[/].", markup=True)
                continue
            if text == "/help":
                out.print(HELP)
                continue
            message: dict[str, Any] = {
                "type": "chat",
                "message": text,
                "session_id": sid,
                "include_memory": not no_memory,
            }
            if model:
                message["model"] = model
            try:
                ws.send(json.dumps(message))
                _render_answer(ws)
            except WebSocketException as exc:
                fail(f"the daemon closed the chat socket: {exc}", code=3)
    out.print(f"Session kept: research sessions show {sid}")
