"""`research query`: one question over the query API (/query), as text or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from localresearch.cli.arguments import question_text
from localresearch.cli.common import (
    api_errors,
    client_starting_daemon,
    fail,
    json_option,
    print_json,
    print_json_line,
    refusals_as_usage_errors,
)
from localresearch.cli.pipes import text_console
from localresearch.plural import counted

if TYPE_CHECKING:
    from localresearch.api.query import QueryResponse


@click.command()
@click.argument("question", callback=question_text)
@click.option("--stream", is_flag=True, help="Show each reasoning step as it completes.")
@click.option(
    "--loops", type=click.IntRange(0, 5), help="Gap rounds (default: research.max_rounds)."
)
@click.option("--dimensions", type=click.IntRange(1, 6), help="Dimensions to research.")
@click.option(
    "--model",
    metavar="M",
    help="This query's model: one the configured provider serves (model or provider/model).",
)
@json_option
@api_errors
def query(
    question: str,
    stream: bool,
    loops: int | None,
    dimensions: int | None,
    model: str | None,
    as_json: bool,
) -> None:
    """Research QUESTION and print the answer, its citations and reasoning steps.

    With --json, the query API's response object (with --stream: one object per line).

    Example: research query "what do my notes say about sqlite?" --stream
    """
    client = client_starting_daemon()
    if not stream:
        with refusals_as_usage_errors():
            result = client.query(question, loops=loops, dimensions=dimensions, model=model)
        if as_json:
            print_json(result)
        else:
            _render(result)
        return
    from localresearch.api.query import QueryPartial, QueryStreamError

    final: QueryResponse | None = None
    with refusals_as_usage_errors():
        for item in client.query_stream(question, loops=loops, dimensions=dimensions, model=model):
            if as_json:
                print_json_line(item)
            if isinstance(item, QueryStreamError):
                fail(item.error.message or "the query failed")
            if isinstance(item, QueryPartial):
                if not as_json:
                    text_console().print(f"[dim]•[/] {_escape(item.step.text)}")
            else:
                final = item
    if final is not None and not as_json:
        _render(final, reasoning=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _render(result: QueryResponse, *, reasoning: bool = True) -> None:
    out = text_console()  # piped: the Markdown answer as is, never wrapped
    if reasoning and result.reasoning:
        out.print("[bold]Reasoning[/]")
        for step in result.reasoning:
            out.print(f"  • {_escape(step)}")
        out.print()
    out.print(_escape(result.answer).rstrip())
    if result.citations:
        out.print("\n[bold]Citations[/]")
        for i, citation in enumerate(result.citations, 1):
            out.print(f"  [{i}] {_escape(citation)}")
    metrics = result.metrics
    out.print(
        f"\n[dim]{counted(metrics.cycles_completed, 'gap round')},"
        f" {counted(metrics.total_tokens.total, 'token')}[/]"
    )
