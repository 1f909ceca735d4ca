"""What a chunk is: the user's own text, or text the daemon wrote (chat logs, digests, tasks).

Only the user's notes are evidence. The daemon's own writing stays searchable on request, but it
is indexed apart (its own FTS table), so it can neither outrank the notes nor move their BM25
statistics: answers from a workspace with a thousand chats equal those from a fresh index.

In a daily log (`memory/YYYY-MM-DD.md`), every entry the daemon appends is wrapped in
`ENTRY_BEGIN` / `ENTRY_END` comment lines (invisible when the Markdown is rendered); whatever the
user writes outside them is a note like any other. Logs written before the markers existed are
read by their headings: a `## HH:MM Chat: …` or `## HH:MM Heartbeat…` section is the daemon's.
"""

from __future__ import annotations

import re
from typing import NamedTuple

NOTE = "note"
LOG = "log"  # a chat exchange appended to the daily log
DIGEST = "digest"  # a heartbeat task's result or message appended to the daily log
HEARTBEAT = "heartbeat"  # the workspace's HEARTBEAT.md: a task list
KINDS = (NOTE, LOG, DIGEST, HEARTBEAT)
DERIVED = frozenset({LOG, DIGEST, HEARTBEAT})

# What the indexer is told about a file before reading it (from where it sits in the workspace).
ROLE_PLAIN = ""
ROLE_DAILY_LOG = "daily_log"
ROLE_HEARTBEAT = "heartbeat"

ENTRY_BEGIN = "<!-- localresearch:entry {kind} -->"
ENTRY_END = "<!-- /localresearch:entry -->"
_BEGIN = re.compile(r"^<!-- localresearch:entry (\w+) -->\s*$")
_END = re.compile(r"^<!-- /localresearch:entry -->\s*$")
_DAILY_LOG_REL = re.compile(r"^memory/\d{4}-\d{2}-\d{2}\.md$")
_DAILY_LOG_CITED = re.compile(r"(^|/)memory/\d{4}-\d{2}-\d{2}\.md$")
_LEGACY_ENTRY = re.compile(r"^## \d{2}:\d{2} (Chat: |Heartbeat)")
_LEGACY_ANY_ENTRY = re.compile(r"^## \d{2}:\d{2} ")


def is_daily_log(file: str) -> bool:
    """Whether a cited file is a day's log: a past exchange, never the best evidence."""
    return _DAILY_LOG_CITED.search(file) is not None


def role_of(rel: str, in_workspace: bool) -> str:
    """The role of a file found at `rel` under a source (the workspace's logs and task list)."""
    if not in_workspace:
        return ROLE_PLAIN
    if rel == "HEARTBEAT.md":
        return ROLE_HEARTBEAT
    if _DAILY_LOG_REL.match(rel):
        return ROLE_DAILY_LOG
    return ROLE_PLAIN


def entry_kind(title: str) -> str:
    """The kind of a daily-log entry the daemon appends, from its title."""
    return DIGEST if title.startswith("Heartbeat") else LOG


def parse_kinds(raw: str | None, include_logs: bool = False) -> frozenset[str]:
    """The kinds a search covers: the user's notes unless told otherwise. Raises ValueError
    naming an unknown kind."""
    if include_logs and not raw:
        return frozenset(KINDS)
    if not raw:
        return frozenset({NOTE})
    kinds = {k.strip().lower() for k in raw.split(",") if k.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise ValueError(f"unknown kind {unknown[0]!r} (one of: {', '.join(KINDS)})")
    if include_logs:
        kinds |= set(KINDS)
    return frozenset(kinds or {NOTE})


class Segment(NamedTuple):
    """A run of a daily log's lines of one kind; `first_line` is its first line's number."""

    kind: str
    first_line: int
    lines: list[str]


def split_daily_log(text: str, first_line: int = 1) -> list[Segment]:
    """A daily log cut into the user's notes and the daemon's entries (marked or legacy)."""
    return split_log_lines(text.splitlines(), first_line)[0]


def split_log_lines(lines: list[str], first_line: int = 1) -> tuple[list[Segment], list[int]]:
    """The segments of a daily log's lines (numbered from `first_line`), and the places where a
    marked entry has ended: indexes into `lines` after which reading can start afresh (nothing
    before them can change what follows, so an appended tail is read from the last of them)."""
    segments: list[Segment] = []
    resumable: list[int] = []
    kind = NOTE
    legacy = False  # inside an unmarked entry of an older version
    current: list[str] = []
    start = first_line

    def cut(next_kind: str, at: int) -> None:
        nonlocal current, start, kind
        if any(line.strip() for line in current):
            segments.append(Segment(kind, start, current))
        current, start, kind = [], at, next_kind

    for index, line in enumerate(lines):
        number = first_line + index
        begin = _BEGIN.match(line)
        if begin and (kind == NOTE or legacy):
            cut(begin.group(1) if begin.group(1) in DERIVED else LOG, number + 1)
            legacy = False
            continue
        if _END.match(line) and kind != NOTE and not legacy:
            cut(NOTE, number + 1)
            resumable.append(index + 1)
            continue
        if (kind == NOTE or legacy) and _LEGACY_ANY_ENTRY.match(line):
            legacy_entry = _LEGACY_ENTRY.match(line)
            if legacy_entry:
                cut(DIGEST if legacy_entry.group(1).startswith("Heartbeat") else LOG, number)
                legacy = True
            elif legacy:
                cut(NOTE, number)
                legacy = False
        elif legacy and line.startswith("# "):
            cut(NOTE, number)
            legacy = False
        current.append(line)
    cut(NOTE, 0)
    return segments, resumable
