"""`research schedule`: recurring questions and research, stored in HEARTBEAT.md."""

from __future__ import annotations

import click

from localresearch.cli.common import api_errors, console, get_client, json_option, print_json


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
    """Add QUESTION, run on schedule EVERY (30m, 1d, "every 1d at 08:00", or cron)."""
    kind = "research" if deep else "ask"
    added = get_client().add_schedule(every, question, kind=kind, priority=priority)
    if as_json:
        print_json(added)
        return
    console().print(
        f"Added {added['id']}: {added['text']} (every: {added['every']}, "
        f"first run {added.get('due_local') or 'now'}, {added['kind']})",
        markup=False,
        soft_wrap=True,
    )


@schedule.command("list", epilog="Example: research schedule list --json")
@json_option
@api_errors
def list_schedules(as_json: bool) -> None:
    """Recurring tasks with their next due time."""
    items = get_client().schedules()
    if as_json:
        print_json(items)
        return
    if not items:
        console().print('No schedules. Add one: research schedule add "every 1d at 08:00" "..."')
        return
    from rich.table import Table

    table = Table()
    for column in ("ID", "Every", "Next due", "Kind", "Question"):
        table.add_column(column, no_wrap=column != "Question", overflow="fold")
    for item in items:
        table.add_row(
            item["id"], item["every"], item.get("due_local") or "now", item["kind"], item["text"]
        )
    console().print(table)


@schedule.command("remove", epilog="Example: research schedule remove 3f2a9c1d")
@click.argument("schedule_id")
@api_errors
def remove(schedule_id: str) -> None:
    """Delete a schedule (or any pending task) from HEARTBEAT.md by its id."""
    get_client().remove_schedule(schedule_id)
    console().print(f"Removed {schedule_id}.", markup=False)
