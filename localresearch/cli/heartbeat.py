"""`research heartbeat`: what the scheduler did and will do; run it now, pause or resume it."""

from __future__ import annotations

from typing import Any

import click

from localresearch.cli.common import api_errors, console, get_client, json_option, print_json


def local_time(value: str | None, zone: str | None = None) -> str:
    """An API time (UTC, ISO) as wall time in the heartbeat's timezone (the one its active
    hours are in), else the machine's."""
    if not value:
        return "—"
    from datetime import datetime, tzinfo
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    tz: tzinfo | None = None
    if zone:
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            tz = None
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z").strip()


def _print_result(result: dict[str, Any] | None) -> None:
    out = console()
    if not result:
        out.print("Last result: none yet")
        return
    out.print(
        f"Last result: {result['status']} ({result.get('trigger', '')}): "
        f"{result.get('ran', 0)} ran, {result.get('failed', 0)} failed",
        markup=False,
    )
    for task in result.get("tasks", []):
        line = f"  - [{task.get('status')}] {task.get('text', '')}"
        if task.get("error"):
            line += f": {task['error']}"
        elif task.get("link"):
            line += f" → {task['link']}"
        out.print(line, markup=False, soft_wrap=True)


@click.group("heartbeat", epilog="Example: research heartbeat status")
def heartbeat() -> None:
    """The heartbeat runs due tasks from HEARTBEAT.md (in the workspace) on a fixed schedule."""


@heartbeat.command("status", epilog="Example: research heartbeat status --json")
@json_option
@api_errors
def status(as_json: bool) -> None:
    """Enabled or paused, last and next run, the last result, and entries it cannot read."""
    data = get_client().heartbeat_status()
    if as_json:
        print_json(data)
        return
    out = console()
    state = "enabled" if data["enabled"] else "disabled"
    if data.get("paused"):
        state += ", paused"
    if data.get("running"):
        state += ", running now"
    zone = data.get("timezone")
    hours = data.get("active_hours") or "always"
    out.print(
        f"Heartbeat: {state}; every {data['interval']} (timeout {data['timeout']}), "
        f"active hours: {hours}" + (f" ({zone})" if zone else ""),
        markup=False,
    )
    out.print(f"Last run:  {local_time(data.get('last_run'), zone)}", markup=False)
    out.print(f"Next run:  {local_time(data.get('next_run'), zone)}", markup=False)
    _print_result(data.get("last_result"))
    pending = data.get("pending", [])
    out.print(
        f"Pending tasks: {len(pending)} (in {data.get('file', 'HEARTBEAT.md')})", markup=False
    )
    for task in pending:
        when = task.get("due_local") or "now"
        every = f", every: {task['every']}" if task.get("every") else ""
        out.print(
            f"  {task['id']}  due {when}{every} [{task['kind']}]  {task['text']}",
            markup=False,
            soft_wrap=True,
        )
    malformed = data.get("malformed", [])
    if malformed:
        out.print(f"[yellow]Entries it cannot read ({len(malformed)}), left untouched:[/]")
        for entry in malformed:
            first = entry["text"].splitlines()[0] if entry["text"] else ""
            out.print(
                f"  line {entry['line_start']}: {entry['reason']}: {first}",
                markup=False,
                soft_wrap=True,
            )


@heartbeat.command("run", epilog="Example: research heartbeat run")
@json_option
@api_errors
def run(as_json: bool) -> None:
    """Run the due tasks now (waits for the heartbeat to finish)."""
    result = get_client().heartbeat_run(timeout=None)
    if as_json:
        print_json(result)
        return
    _print_result(result.to_dict())


@heartbeat.command("pause", epilog="Example: research heartbeat pause")
@json_option
@api_errors
def pause(as_json: bool) -> None:
    """Stop running tasks on schedule until resumed (kept across restarts)."""
    data = get_client().heartbeat_pause()
    if as_json:
        print_json(data)
        return
    console().print("Heartbeat paused. Resume with: research heartbeat resume")


@heartbeat.command("resume", epilog="Example: research heartbeat resume")
@json_option
@api_errors
def resume(as_json: bool) -> None:
    """Run tasks on schedule again."""
    data = get_client().heartbeat_resume()
    if as_json:
        print_json(data)
        return
    console().print(
        f"Heartbeat resumed. Next run: {local_time(data.get('next_run'))}", markup=False
    )
