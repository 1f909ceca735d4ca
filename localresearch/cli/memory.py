"""`research memory`: search your notes, see the index, add and remove folders."""

from __future__ import annotations

import re
from typing import Any

import click

from localresearch.cli.arguments import NonEmptyPath
from localresearch.cli.common import (
    api_errors,
    client_starting_daemon,
    console,
    get_client,
    json_option,
    print_json,
)
from localresearch.plural import counted

SNIPPET_CHARS = 240


def _snippet(content: str, query: str) -> str:
    """A one-line excerpt around the first query word, with the query's words highlighted."""
    from rich.markup import escape

    words = [w for w in re.findall(r"\w+", query.lower()) if len(w) > 1]
    flat = " ".join(content.split())
    lowered = flat.lower()
    positions = [lowered.find(w) for w in words if lowered.find(w) >= 0]
    start = max(0, min(positions) - 60) if positions else 0
    excerpt = flat[start : start + SNIPPET_CHARS]
    prefix = "…" if start else ""
    suffix = "…" if start + SNIPPET_CHARS < len(flat) else ""
    text = escape(excerpt)
    if words:
        # Stems match too: "async" highlights "asynchronous".
        pattern = re.compile("(" + "|".join(re.escape(w) for w in words) + r")\w*", re.IGNORECASE)
        text = pattern.sub(lambda m: f"[bold yellow]{m.group(0)}[/]", text)
    return prefix + text + suffix


def _location(hit: dict[str, Any]) -> str:
    page = f" p. {hit['page']}" if hit.get("page") else ""
    kind = f" ({hit['kind']})" if hit.get("kind", "note") != "note" else ""
    return f"{hit['file']}{page}:{hit['line_start']}{kind}"


@click.group(
    epilog='Example: research memory search "rust async" --limit 5',
)
def memory() -> None:
    """Search and manage the memory index (the workspace and the folders you add)."""


def _embeddings_group() -> click.Command:
    from localresearch.cli.embeddings import embeddings

    return embeddings


memory.add_command(_embeddings_group())


def _vector_line(progress: dict[str, Any]) -> str:
    """e.g. 1200/9146 vectors, 9.1/s, 14 min left."""
    line = f"{progress['done']}/{progress['total']} vectors, {progress['rate_per_s']:.1f}/s"
    eta = progress.get("eta_s")
    if progress.get("running") and eta:
        line += f", {eta / 60:.0f} min left" if eta >= 90 else f", {eta:.0f} s left"
    return line


@memory.command(epilog='Example: research memory search "sqlite wal mode" --limit 5')
@click.argument("query")
@click.option("--limit", "-n", default=10, show_default=True, help="Most hits to show.")
@click.option(
    "--include-logs",
    is_flag=True,
    help="Also search what the daemon wrote: chat logs, heartbeat digests, HEARTBEAT.md.",
)
@click.option(
    "--kind",
    default=None,
    help="Only these kinds, comma-separated: note, log, digest, heartbeat (default: note).",
)
@click.option("--prefix", is_flag=True, help="The last word may be the start of a longer word.")
@json_option
@api_errors
def search(
    query: str, limit: int, include_logs: bool, kind: str | None, prefix: bool, as_json: bool
) -> None:
    """Search your notes; hits print as file:line with the matching words highlighted.

    Quote words for a phrase ("live backup"). What the daemon wrote itself (chat exchanges in
    the daily logs, heartbeat digests, HEARTBEAT.md) is left out unless asked for."""
    result = get_client().memory_search(
        query, limit, kind=kind, include_logs=include_logs, prefix=prefix
    )
    if as_json:
        print_json(result)
        return
    out = console()
    if not result["results"]:
        out.print("No matches.", markup=False, soft_wrap=True)
        return
    for hit in result["results"]:
        heading = f"  [dim]{hit['heading']}[/]" if hit.get("heading") else ""
        out.print(
            f"[bold cyan]{_location(hit)}[/]{heading}", markup=True, highlight=False, soft_wrap=True
        )
        out.print(
            "  " + _snippet(hit["content"], query), markup=True, highlight=False, soft_wrap=True
        )


@memory.command(epilog="Example: research memory stats --json")
@json_option
@api_errors
def stats(as_json: bool) -> None:
    """Files and chunks in the index, the workspace, and the last reindex."""
    data = get_client().memory_stats()
    if as_json:
        print_json(data)
        return
    out = console()
    files, index = data["files"], data["index"]
    out.print(f"Workspace:     {data['workspace']}", markup=False, soft_wrap=True)
    out.print(f"Files indexed: {files['total']}", markup=False, soft_wrap=True)
    out.print(f"Chunks:        {index['chunks']}", markup=False, soft_wrap=True)
    out.print(f"Daily logs:    {files['daily_logs']['count']}", markup=False, soft_wrap=True)
    out.print(f"Last indexed:  {index['last_indexed'] or 'never'}", markup=False, soft_wrap=True)
    out.print(
        f"Database:      {index['database_size_bytes'] / 1e6:.1f} MB", markup=False, soft_wrap=True
    )
    embeddings = data.get("embeddings")
    if embeddings:
        line = f"Embeddings:    {embeddings['model']}, {counted(embeddings['vectors'], 'vector')}"
        progress = embeddings.get("progress")
        if progress and progress.get("running"):
            line += f" (embedding: {_vector_line(progress)})"
        if embeddings.get("error"):
            line += f" (last error: {embeddings['error']})"
        out.print(line, markup=False, soft_wrap=True)
    if index.get("indexing"):
        out.print("Indexing now…", markup=False, soft_wrap=True)


def _print_report(report: dict[str, Any], show_skipped: bool) -> None:
    out = console()
    out.print(
        f"Index current: {report['added']} added, {report['updated']} updated,"
        f" {report['removed']} removed, {report['unchanged']} unchanged,"
        f" {report['skipped']} skipped ({counted(report['chunks_added'], 'chunk')} added,"
        f" {report['chunks_removed']} removed) in {report['seconds']:.1f} s",
        markup=False,
        soft_wrap=True,
    )
    if report["skipped"]:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(report["skipped_reasons"].items()))
        out.print(f"Skipped: {reasons}", markup=False, soft_wrap=True)
        if show_skipped:
            for item in report["skipped_files"]:
                out.print(f"  {item['path']}: {item['reason']}", markup=False, soft_wrap=True)


def _reindex(force: bool, as_json: bool, show_skipped: bool) -> Any:
    """Reindex with a progress bar and print the report; with `as_json`, return the report
    instead of printing anything (the caller prints one JSON document)."""
    client = client_starting_daemon(timeout=3600.0)
    if as_json:
        return client.memory_reindex(force=force)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    report: dict[str, Any] | None = None
    with Progress(
        TextColumn("Indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=console(),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)
        for event in client.memory_reindex_stream(force=force):
            if event.type == "progress":
                data = event.data
                bar.update(
                    task,
                    total=data["files_total"],
                    completed=data["files_done"],
                    description=str(data["file"])[-50:],
                )
            elif event.type == "vectors":
                data = event.data
                bar.update(
                    task,
                    total=data["total"],
                    completed=data["done"],
                    description="vectors: " + _vector_line(data),
                )
            elif event.type == "done":
                report = event.data
            elif event.type == "error":
                from localresearch.cli.common import fail

                fail(event.data.get("message", "reindex failed"))
    if report is not None:
        _print_report(report, show_skipped)
    return None


@memory.command(epilog="Example: research memory reindex --show-skipped")
@click.option("--force", is_flag=True, help="Re-chunk every file, changed or not.")
@click.option("--show-skipped", is_flag=True, help="List each skipped file and why.")
@json_option
@api_errors
def reindex(force: bool, show_skipped: bool, as_json: bool) -> None:
    """Bring the index up to date now, with progress; report what changed."""
    report = _reindex(force, as_json, show_skipped)
    if as_json:
        print_json(report)


@memory.command(epilog='Example: research memory add ~/notes --glob "*.md"')
@click.argument("path", type=NonEmptyPath(exists=True, file_okay=True, resolve_path=True))
@click.option("--glob", "globs", multiple=True, help="Only files matching (repeatable).")
@click.option("--no-index", is_flag=True, help="Just remember it; index on the next pass.")
@json_option
@api_errors
def add(path: str, globs: tuple[str, ...], no_index: bool, as_json: bool) -> None:
    """Add a folder (or file) to the memory index, then index it.

    With --json, one object: {"source": ..., "reindex": the report, or null with --no-index}."""
    source = client_starting_daemon().memory_add_source(path, ",".join(globs))
    if not as_json:
        console().print(f"Added {source['path']}", markup=False, soft_wrap=True)
    report = None if no_index else _reindex(False, as_json, False)
    if as_json:
        print_json({"source": source, "reindex": report})


@memory.command(epilog="Example: research memory remove ~/notes")
@click.argument("path", type=NonEmptyPath(resolve_path=True))
@json_option
@api_errors
def remove(path: str, as_json: bool) -> None:
    """Remove a folder added with `memory add`; its files leave the index."""
    result = get_client().memory_remove_source(path)
    if as_json:
        print_json(result)
        return
    console().print(
        f"Removed {result['path']} ({counted(result['files_removed'], 'file')} left the index)",
        markup=False,
        soft_wrap=True,
    )


@memory.command(epilog="Example: research memory sources --json")
@json_option
@api_errors
def sources(as_json: bool) -> None:
    """The folders indexed: the workspace, [memory].paths and the ones you added."""
    items = get_client().memory_sources()
    if as_json:
        print_json(items)
        return
    for item in items:
        glob = f"  ({item['glob']})" if item.get("glob") else ""
        console().print(f"{item['origin']:<10} {item['path']}{glob}", markup=False, soft_wrap=True)
