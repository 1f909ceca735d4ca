"""`research schedule`: recurring questions and research, stored in HEARTBEAT.md.

The file is the one truth, so these commands work without the daemon too: they then make the
same atomic, merging edit of HEARTBEAT.md themselves (and say so on stderr).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

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

if TYPE_CHECKING:
    from localresearch.client import Client
    from localresearch.heartbeat.file import HeartbeatFile

T = TypeVar("T")


def _heartbeat_file() -> HeartbeatFile:
    """This installation's HEARTBEAT.md, in the zone the daemon would use."""
    from localresearch.config import load_config
    from localresearch.heartbeat.file import HeartbeatFile
    from localresearch.heartbeat.settings import HeartbeatSettings
    from localresearch.paths import resolve_paths
    from localresearch.workspace import workspace_dir

    paths = resolve_paths()
    config = load_config(paths.config_file)
    settings = HeartbeatSettings.from_config(config, file=str(paths.config_file))
    return HeartbeatFile(workspace_dir(config, paths) / "HEARTBEAT.md", settings.tz)


def _daemon_or_file(
    online: Callable[[Client], T], offline: Callable[[HeartbeatFile], T], done: str
) -> T:
    """Ask the daemon; if it is not running, edit or read HEARTBEAT.md here instead."""
    from localresearch.client import DaemonNotRunning
    from localresearch.errors import LocalResearchError

    try:
        return online(get_client())
    except DaemonNotRunning:
        pass
    file = _heartbeat_file()
    try:
        result = offline(file)
    except LocalResearchError as exc:
        fail(exc.message)
    err_console().print(
        f"The daemon is not running: {done} {file.path} directly.", markup=False, soft_wrap=True
    )
    return result


@click.group(
    "schedule", epilog='Example: research schedule add "every 1d at 08:00" "news on sqlite?"'
)
def schedule() -> None:
    """Recurring tasks. They live in HEARTBEAT.md, so editing that file works just as well."""


@schedule.command(
    "add",
    epilog=(
        'Examples:\n\n  research schedule add "every 1d at 08:00" "What did I note yesterday?"\n\n'
        '  research schedule add "0 9 * * mon" "State of RAG evaluation" --research'
    ),
)
@click.argument("every")
@click.argument("question")
@click.option("--research", "deep", is_flag=True, help="Run a deep research job, not an ask.")
@click.option(
    "--priority", type=click.Choice(["high", "normal", "low"]), help="Order within a heartbeat."
)
@json_option
@api_errors
def add(every: str, question: str, deep: bool, priority: str | None, as_json: bool) -> None:
    """Add QUESTION, run on schedule EVERY (30m, 1d, "every 1d at 08:00", or cron).

    Works without the daemon: the task is then written to HEARTBEAT.md directly.
    """
    from datetime import UTC, datetime

    from localresearch.api.heartbeat import Task
    from localresearch.heartbeat import schedules

    kind = "research" if deep else "ask"
    added = _daemon_or_file(
        lambda client: client.add_schedule(every, question, kind=kind, priority=priority),
        lambda file: Task.of(
            schedules.add_schedule(
                file, every, question, datetime.now(UTC), kind=kind, priority=priority
            )
        ),
        "added to",
    )
    if as_json:
        print_json(added.to_dict())
        return
    console().print(
        f"Added {added.id}: {added.text} (every: {added.every}, "
        f"first run {added.due_local or 'now'}, {added.kind})",
        markup=False,
        soft_wrap=True,
    )


@schedule.command("list", epilog="Example: research schedule list --json")
@json_option
@api_errors
def list_schedules(as_json: bool) -> None:
    """Recurring tasks with their next due time (read from HEARTBEAT.md without a daemon)."""
    from localresearch.api.heartbeat import Task
    from localresearch.heartbeat import schedules

    items = _daemon_or_file(
        lambda client: client.schedules(),
        lambda file: [Task.of(t) for t in schedules.list_schedules(file)],
        "read",
    )
    if as_json:
        print_json([item.to_dict() for item in items])
        return
    if not items:
        console().print('No schedules. Add one: research schedule add "every 1d at 08:00" "..."')
        return
    from rich.table import Table

    table = Table()
    for column in ("ID", "Every", "Next due", "Kind", "Question"):
        table.add_column(column, no_wrap=column != "Question", overflow="fold")
    for item in items:
        table.add_row(item.id, item.every, item.due_local or "now", item.kind, item.text)
    console().print(table)


@schedule.command("remove", epilog="Example: research schedule remove 3f2a9c1d")
@click.argument("schedule_id")
@api_errors
def remove(schedule_id: str) -> None:
    """Delete a schedule (or any pending task) from HEARTBEAT.md by its id.

    Works without the daemon: the task is then removed from HEARTBEAT.md directly.
    """
    from localresearch.heartbeat import schedules

    _daemon_or_file(
        lambda client: client.remove_schedule(schedule_id),
        lambda file: schedules.remove_schedule(file, schedule_id),
        "removed from",
    )
    console().print(f"Removed {schedule_id}.", markup=False)
