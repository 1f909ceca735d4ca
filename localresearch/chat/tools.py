"""The tools a model may call during a chat: memory_search, memory_save, read_file, web_fetch.

Tool failures are answers to the model ("error: ..."), not failures of the chat.
"""

from __future__ import annotations

import asyncio
import html
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from localresearch.errors import InvalidRequest
from localresearch.memory.types import MemorySearcher
from localresearch.providers.base import ToolCall, ToolSpec

MAX_FILE_CHARS = 60_000
MAX_FETCH_BYTES = 500_000
FETCH_TIMEOUT = 20.0

_save_lock = threading.Lock()

SPECS = {
    "memory_search": ToolSpec(
        "memory_search",
        "Search the user's notes and indexed folders; returns passages with file:line.",
        {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for."},
                "limit": {"type": "integer", "description": "Most passages (default 5)."},
            },
            "required": ["query"],
        },
    ),
    "memory_save": ToolSpec(
        "memory_save",
        "Save a fact worth remembering to the user's long-term memory (MEMORY.md).",
        {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "The note to keep."}},
            "required": ["text"],
        },
    ),
    "read_file": ToolSpec(
        "read_file",
        "Read a text file from the workspace or an indexed folder.",
        {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "Path, relative to the workspace."},
                "start_line": {"type": "integer"},
                "end_line": {"type": "integer"},
            },
            "required": ["path"],
        },
    ),
    "web_fetch": ToolSpec(
        "web_fetch",
        "Fetch a web page (http or https) and return its text.",
        {
            "type": "object",
            "properties": {"url": {"type": "string"}},
            "required": ["url"],
        },
    ),
}


@dataclass
class ToolBox:
    """What the tools may touch: the memory index, the workspace and the readable roots."""

    workspace: Path
    roots: list[Path]
    memory: MemorySearcher | None = None
    web_fetch: bool = False
    # More readable folders, looked up only when read_file is called (e.g. memory sources).
    more_roots: Callable[[], Awaitable[list[Path]]] | None = None

    def specs(self) -> list[ToolSpec]:
        names = ["memory_save", "read_file"]
        if self.memory is not None:
            names.insert(0, "memory_search")
        if self.web_fetch:
            names.append("web_fetch")
        return [SPECS[n] for n in names]

    async def run(self, call: ToolCall) -> str:
        """The tool's result as text for the model; errors are results too."""
        handler = getattr(self, f"_tool_{call.name}", None)
        if handler is None or call.name not in {s.name for s in self.specs()}:
            return f"error: unknown or disabled tool {call.name!r}"
        try:
            result: str = await handler(call.arguments)
        except (InvalidRequest, OSError, ValueError, TypeError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            return f"error: {message}"
        return result

    async def _tool_memory_search(self, args: dict[str, Any]) -> str:
        assert self.memory is not None
        query = _string(args, "query")
        limit = max(1, min(int(args.get("limit") or 5), 20))
        hits = await self.memory.search(query, limit)  # the user's notes, never the chat logs
        if not hits:
            return "No passages found."
        return "\n\n".join(
            f"{h.file}{'' if h.page is None else f' p. {h.page}'}:{h.line_start}-{h.line_end}\n"
            f"{h.content.strip()}"
            for h in hits
        )

    async def _tool_memory_save(self, args: dict[str, Any]) -> str:
        text = " ".join(_string(args, "text").split())
        await asyncio.to_thread(append_memory, self.workspace, text)
        return "Saved to MEMORY.md."

    async def _tool_read_file(self, args: dict[str, Any]) -> str:
        roots = list(self.roots)
        if self.more_roots is not None:
            roots.extend(await self.more_roots())
        path = await asyncio.to_thread(
            resolve_readable, _string(args, "path"), self.workspace, roots
        )
        start = int(args.get("start_line") or 1)
        end = args.get("end_line")
        return await asyncio.to_thread(_read_lines, path, start, int(end) if end else None)

    async def _tool_web_fetch(self, args: dict[str, Any]) -> str:
        return await fetch_text(_string(args, "url"))


def _string(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"argument {name!r} must be a non-empty string")
    return value


def append_memory(workspace: Path, text: str, when: datetime | None = None) -> Path:
    """Append one bullet to MEMORY.md (created if missing), dated, never rewriting the file."""
    when = when or datetime.now().astimezone()
    target = workspace / "MEMORY.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    with _save_lock:
        fresh = not target.exists() or target.stat().st_size == 0
        newline = True
        if not fresh:
            with target.open("rb") as fh:
                fh.seek(-1, 2)
                newline = fh.read(1) == b"\n"
        with target.open("a", encoding="utf-8") as fh:
            if fresh:
                fh.write("# Memory\n\n")
            elif not newline:
                fh.write("\n")
            fh.write(f"- {text} ({when:%Y-%m-%d})\n")
    return target


def resolve_readable(raw: str, workspace: Path, roots: list[Path]) -> Path:
    """The file `raw` names, if it lies inside the workspace or an added folder (symlinks
    resolved first, so neither `..` nor a link can leave them)."""
    candidate = Path(raw).expanduser()
    allowed = [workspace.resolve(), *(r.resolve() for r in roots)]
    options = [candidate] if candidate.is_absolute() else [root / candidate for root in allowed]
    for option in options:
        resolved = option.resolve()
        if not any(resolved == root or resolved.is_relative_to(root) for root in allowed):
            continue
        if resolved.is_file():
            return resolved
        if resolved.exists():
            raise InvalidRequest(f"{raw} is not a file")
    inside = any(
        o.resolve() == r or o.resolve().is_relative_to(r) for o in options for r in allowed
    )
    if not inside:
        raise InvalidRequest(f"{raw} is outside the workspace and the added folders (refused)")
    raise InvalidRequest(f"{raw}: no such file")


def _read_lines(path: Path, start: int, end: int | None) -> str:
    with path.open("rb") as fh:
        head = fh.read(MAX_FILE_CHARS * 4)
    if b"\x00" in head[:4096]:
        raise InvalidRequest(f"{path.name} is a binary file")
    lines = head.decode("utf-8", errors="replace").splitlines()
    start = max(1, start)
    chosen = lines[start - 1 : end if end else None]
    text = "\n".join(chosen)
    if len(text) > MAX_FILE_CHARS:
        text = text[:MAX_FILE_CHARS] + "\n… (truncated)"
    return text


_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)


async def fetch_text(url: str) -> str:
    """GET a page and reduce it to text (only called when `api.web_fetch` is on)."""
    import aiohttp

    if not re.match(r"^https?://", url, re.I):
        raise InvalidRequest("only http and https URLs can be fetched")
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers={"User-Agent": "localresearch"}) as response,
        ):
            body = await response.content.read(MAX_FETCH_BYTES)
            status = response.status
            charset = response.charset or "utf-8"
            ctype = response.content_type
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise InvalidRequest(f"fetch failed: {exc or type(exc).__name__}") from None
    if status >= 400:
        raise InvalidRequest(f"fetch failed: HTTP {status}")
    text = body.decode(charset, errors="replace")
    if "html" in ctype:
        text = html.unescape(_TAGS.sub(" ", text))
    return re.sub(r"[ \t]+", " ", re.sub(r"\n\s*\n+", "\n\n", text)).strip()[:MAX_FILE_CHARS]
