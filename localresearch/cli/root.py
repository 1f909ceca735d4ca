"""The `research` click group; subcommands are imported only when they run."""

from __future__ import annotations

import importlib

import click

from localresearch import __version__

# name → ("module:attribute", one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "daemon": ("localresearch.cli.daemon:daemon", "Start, stop and inspect the background daemon."),
    "config": ("localresearch.cli.config:config", "Show, check and edit config.toml."),
    "status": ("localresearch.cli.daemon:status_command", "Is the daemon running? (alias)"),
    "ask": ("localresearch.cli.ask:ask", "Ask a question; a cited answer streams in."),
    "memory": ("localresearch.cli.memory:memory", "Search and manage the index of your notes."),
    "chat": ("localresearch.cli.chat:chat", "Chat interactively (a session over WebSocket)."),
    "sessions": ("localresearch.cli.sessions:sessions", "List, show and delete chat sessions."),
    "models": ("localresearch.cli.models:models", "List model providers and models."),
    "deep": ("localresearch.cli.deep:deep", "Research a question in depth: a cited report."),
    "deep-sessions": (
        "localresearch.cli.deep_sessions:deep_sessions",
        "List, show and delete research sessions (research deep --interactive).",
    ),
    "jobs": ("localresearch.cli.jobs:jobs", "List, watch, cancel and export research jobs."),
    "heartbeat": (
        "localresearch.cli.heartbeat:heartbeat",
        "Scheduled tasks from HEARTBEAT.md: status, run, pause, resume.",
    ),
    "keys": ("localresearch.cli.keys:keys", "Create, list and revoke API keys."),
    "query": (
        "localresearch.cli.query:query",
        "One question over the query API: report, citations, reasoning steps.",
    ),
    "schedule": (
        "localresearch.cli.schedule:schedule",
        "Add, list and remove recurring questions and research.",
    ),
    "web": ("localresearch.cli.web:web", "Open the daemon's page in your browser, signed in."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are resolved from COMMANDS on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target[0].partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["localresearch.help"] = bool({"--help", "-h"} & set(args))
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog='Example: research ask "what do my notes say about sqlite?"',
)
@click.version_option(__version__, prog_name="localresearch")
def cli() -> None:
    """localresearch: a research assistant that runs on your machine.

    A daemon (127.0.0.1:31327) indexes your notes and answers questions with citations, offline
    by default. Files live under LOCALRESEARCH_HOME if set, else the platform's user dirs.
    """
    if click.get_current_context().meta.get("localresearch.help"):
        return  # a command's --help needs no files
    from localresearch.paths import resolve_paths

    problem = resolve_paths().problem()
    if problem:
        from localresearch.cli.common import fail

        fail(problem, code=2)
