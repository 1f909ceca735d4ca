"""HEARTBEAT.md as data: tasks under `## Pending` and `## Completed`, and entries we cannot read.

A task is a top-level Markdown list item; its first line is the task, and indented `key: value`
lines below it are its fields (priority, due, every, kind). Anything we cannot read is kept
verbatim and reported as malformed: the parser never drops or rewrites a line it does not own.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from localresearch.errors import LocalResearchError
from localresearch.heartbeat.schedule import Every, format_due, parse_due

FIELDS = ("priority", "due", "every", "kind")
KINDS = ("ask", "research")
PRIORITIES = {"high": 0, "normal": 1, "medium": 1, "low": 2}
_ITEM = re.compile(r"^([-*+])\s+(?:\[( |x|X)\]\s+)?(.*)$")
_FIELD = re.compile(r"^\s+(?:[-*+]\s+)?([A-Za-z_][\w-]*)\s*:\s*(.*?)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Task:
    """One readable task; `raw` is its exact block of lines, used to find it again on disk."""

    id: str
    text: str
    section: str  # "pending" | "completed"
    line_start: int  # 1-based, inclusive
    line_end: int
    raw: str
    fields: dict[str, str] = field(default_factory=dict)
    due: datetime | None = None
    every: Every | None = None
    kind: str = "ask"
    priority: int = PRIORITIES["normal"]

    @property
    def recurring(self) -> bool:
        return self.every is not None

    def listed(self, tz: tzinfo) -> ListedTask:
        """The task as the API and the CLI list it, its due time also in the heartbeat's zone."""
        return ListedTask(
            id=self.id,
            text=self.text,
            section=self.section,
            kind=self.kind,
            priority=self.fields.get("priority", "normal"),
            every=self.every.text if self.every else None,
            due=self.due,
            due_local=format_due(self.due, tz) if self.due else None,
            line_start=self.line_start,
            line_end=self.line_end,
        )


@dataclass(frozen=True)
class ListedTask:
    """A task of HEARTBEAT.md as listed (heartbeat status, schedules): encoded in
    api/heartbeat.py."""

    id: str
    text: str
    section: str  # "pending" | "completed"
    kind: str  # "ask" | "research"
    priority: str  # as written: high, normal (also when absent), medium or low
    every: str | None  # the recurrence as written, None for a one-off task
    due: datetime | None
    due_local: str | None  # the due time in the heartbeat's zone, as the user reads it
    line_start: int
    line_end: int


@dataclass(frozen=True)
class Malformed:
    """An entry kept as the user wrote it, with the reason we could not use it."""

    line_start: int
    line_end: int
    raw: str
    reason: str

    @property
    def text(self) -> str:
        """The entry's lines as written, without the final line break."""
        return self.raw.rstrip("\r\n")


@dataclass
class HeartbeatDoc:
    """A parsed HEARTBEAT.md; `lines` keep their line endings so unchanged text round-trips."""

    lines: list[str]
    tasks: list[Task]
    malformed: list[Malformed]
    pending: tuple[int, int] | None  # [heading index, end index) of the section, 0-based
    completed: tuple[int, int] | None

    @property
    def pending_tasks(self) -> list[Task]:
        return [t for t in self.tasks if t.section == "pending"]

    def newline(self) -> str:
        for line in self.lines:
            if line.endswith("\r\n"):
                return "\r\n"
            if line.endswith("\n"):
                return "\n"
        return "\n"


def task_id(text: str, every: str) -> str:
    """Short and stable across runs (the due time changes each run, so it is left out)."""
    digest = hashlib.sha256(f"{text.strip()}\x00{every.strip()}".encode()).hexdigest()
    return digest[:8]


def _section_name(line: str) -> str | None:
    match = _HEADING.match(line.rstrip("\r\n"))
    if not match:
        return None
    return match.group(2).strip().lower()


def _heading_level(line: str) -> int:
    match = _HEADING.match(line.rstrip("\r\n"))
    return len(match.group(1)) if match else 0


def find_sections(lines: list[str]) -> dict[str, tuple[int, int]]:
    sections: dict[str, tuple[int, int]] = {}
    in_fence = False
    starts: list[tuple[int, str, int]] = []
    in_comment = False
    for index, line in enumerate(lines):
        if in_comment or line.lstrip().startswith("<!--"):
            in_comment = "-->" not in line
            continue
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        name = _section_name(line)
        if name is not None:
            starts.append((index, name, _heading_level(line)))
    for position, (index, name, level) in enumerate(starts):
        end = len(lines)
        for later_index, _name, later_level in starts[position + 1 :]:
            if later_level <= level:
                end = later_index
                break
        if name in ("pending", "completed") and name not in sections:
            sections[name] = (index, end)
    return sections


def _blocks(lines: list[str], start: int, end: int) -> list[tuple[int, int, str]]:
    """(first, last+1, kind) blocks inside a section: 'item', 'text'; comments/blank skipped."""
    blocks: list[tuple[int, int, str]] = []
    index = start
    while index < end:
        line = lines[index].rstrip("\r\n")
        if not line.strip():
            index += 1
            continue
        if line.lstrip().startswith("<!--"):
            while index < end and "-->" not in lines[index]:
                index += 1
            index += 1
            continue
        if _ITEM.match(line):
            last = index + 1
            while last < end:
                nxt = lines[last].rstrip("\r\n")
                if not nxt.strip() or not nxt[0].isspace():
                    break
                last += 1
            blocks.append((index, last, "item"))
            index = last
            continue
        last = index + 1
        while last < end:
            nxt = lines[last].rstrip("\r\n")
            if not nxt.strip() or _ITEM.match(nxt) or nxt.lstrip().startswith("<!--"):
                break
            last += 1
        blocks.append((index, last, "text"))
        index = last
    return blocks


class _BadEntry(LocalResearchError):
    code = "invalid_request"


def _read_task(block: list[str], section: str, first: int, tz: tzinfo) -> Task:
    match = _ITEM.match(block[0].rstrip("\r\n"))
    assert match is not None
    text = match.group(3).strip()
    if not text:
        raise _BadEntry("empty task")
    if match.group(2) in ("x", "X"):
        raise _BadEntry("checked as done but under Pending: move it to Completed or uncheck it")
    fields: dict[str, str] = {}
    for offset, raw in enumerate(block[1:], start=1):
        field_match = _FIELD.match(raw.rstrip("\r\n"))
        if not field_match:
            raise _BadEntry(f"line {first + offset + 1}: expected 'key: value' under the task")
        key, value = field_match.group(1).lower(), field_match.group(2)
        if key not in FIELDS:
            raise _BadEntry(f"unknown field '{key}' (known: {', '.join(FIELDS)})")
        if key in fields:
            raise _BadEntry(f"field '{key}' given twice")
        fields[key] = value
    kind = fields.get("kind", "ask").strip().lower() or "ask"
    if kind not in KINDS:
        raise _BadEntry(f"kind must be ask or research, not {fields['kind']!r}")
    priority_text = fields.get("priority", "normal").strip().lower() or "normal"
    if priority_text not in PRIORITIES:
        raise _BadEntry(f"priority must be high, normal or low, not {fields['priority']!r}")
    due = parse_due(fields["due"], tz) if fields.get("due") else None
    every = Every.parse(fields["every"]) if fields.get("every") else None
    return Task(
        id=task_id(text, every.text if every else ""),
        text=text,
        section=section,
        line_start=first + 1,
        line_end=first + len(block),
        raw="".join(block),
        fields=fields,
        due=due,
        every=every,
        kind=kind,
        priority=PRIORITIES[priority_text],
    )


# The file is read with errors="surrogateescape" so that its bytes round-trip unchanged; a byte
# that is not UTF-8 becomes one of these lone surrogates.
_UNDECODED = re.compile("[\udc80-\udcff]")
NOT_UTF8 = "not UTF-8 text (save HEARTBEAT.md as UTF-8); the entry is kept as it is"


def parse(text: str, tz: tzinfo) -> HeartbeatDoc:
    """Read the file's text; never fails: what cannot be read is reported as malformed."""
    lines = text.splitlines(keepends=True)
    sections = find_sections(lines)
    tasks: list[Task] = []
    malformed: list[Malformed] = []
    seen: dict[str, int] = {}
    for name in ("pending", "completed"):
        bounds = sections.get(name)
        if bounds is None:
            continue
        for first, last, kind in _blocks(lines, bounds[0] + 1, bounds[1]):
            raw = "".join(lines[first:last])
            if _UNDECODED.search(raw):  # bytes that are not UTF-8 (an editor saving Latin-1)
                shown = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                malformed.append(Malformed(first + 1, last, shown, NOT_UTF8))
                continue
            if kind == "text":
                if name == "pending":
                    malformed.append(Malformed(first + 1, last, raw, "not a list item"))
                continue
            if name == "completed":
                tasks.append(_completed(lines[first:last], first))
                continue
            try:
                task = _read_task(lines[first:last], name, first, tz)
            except LocalResearchError as exc:
                malformed.append(Malformed(first + 1, last, raw, exc.message))
                continue
            count = seen.get(task.id, 0)
            seen[task.id] = count + 1
            if count:
                task = _with_id(task, f"{task.id}-{count + 1}")
            tasks.append(task)
    return HeartbeatDoc(
        lines=lines,
        tasks=tasks,
        malformed=malformed,
        pending=sections.get("pending"),
        completed=sections.get("completed"),
    )


def _with_id(task: Task, new_id: str) -> Task:
    from dataclasses import replace

    return replace(task, id=new_id)


def _completed(block: list[str], first: int) -> Task:
    match = _ITEM.match(block[0].rstrip("\r\n"))
    text = match.group(3).strip() if match else block[0].strip()
    return Task(
        id=task_id(text, "done"),
        text=text,
        section="completed",
        line_start=first + 1,
        line_end=first + len(block),
        raw="".join(block),
    )


def render_task(
    text: str,
    *,
    newline: str = "\n",
    every: str | None = None,
    due: datetime | None = None,
    kind: str = "ask",
    priority: str | None = None,
    tz: tzinfo,
) -> str:
    """A new task block in the documented format."""
    lines = [f"- {text.strip()}"]
    if priority:
        lines.append(f"  priority: {priority}")
    if every:
        lines.append(f"  every: {every}")
    if due is not None:
        lines.append(f"  due: {format_due(due, tz)}")
    if kind != "ask":
        lines.append(f"  kind: {kind}")
    return newline.join(lines) + newline


def with_due(task: Task, due: datetime, tz: tzinfo, newline: str) -> str:
    """The task's block with only its `due` line changed (or added after the first line)."""
    lines = task.raw.splitlines(keepends=True)
    value = format_due(due, tz)
    for index, line in enumerate(lines[1:], start=1):
        match = _FIELD.match(line.rstrip("\r\n"))
        if match and match.group(1).lower() == "due":
            start = line.index(match.group(2)) if match.group(2) else len(line.rstrip("\r\n"))
            ending = line[len(line.rstrip("\r\n")) :]
            lines[index] = line[:start].rstrip() + " " + value + ending
            return "".join(lines)
    indent = "  "
    for line in lines[1:]:
        stripped = line.rstrip("\r\n")
        indent = stripped[: len(stripped) - len(stripped.lstrip())] or indent
        break
    if not lines[0].endswith(("\n", "\r")):
        lines[0] += newline
    lines.insert(1, f"{indent}due: {value}{newline}")
    return "".join(lines)


def completed_line(task: Task, when: datetime, tz: tzinfo, note: str, newline: str) -> str:
    """How a finished one-off task reads in `## Completed`: checked, timestamped, fields kept."""
    stamp = when.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    suffix = f" — {note}" if note else ""
    first = f"- [x] {task.text} (done {stamp}{suffix}){newline}"
    rest = task.raw.splitlines(keepends=True)[1:]
    if rest and not rest[-1].endswith(("\n", "\r")):
        rest[-1] += newline
    return first + "".join(rest)
