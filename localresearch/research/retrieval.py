"""Where sources come from: the memory index (always; it holds the user's folders) and the web."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from localresearch.errors import InvalidRequest
from localresearch.memory.types import MemorySearcher, SearchHit
from localresearch.research.citations import strip_markers
from localresearch.research.types import Source

log = logging.getLogger(__name__)


class WebSearcher(Protocol):
    """A web search backend that returns sources with readable page text as the passage."""

    async def search(self, query: str, limit: int) -> list[Source]: ...

    async def close(self) -> None: ...


def source_from_hit(hit: SearchHit) -> Source:
    name = hit.file if hit.page is None else f"{hit.file} p. {hit.page}"
    location = f"{name}:{hit.line_start}-{hit.line_end}"
    title = hit.heading.split(" > ")[-1] if hit.heading else Path(hit.file).name
    url = Path(hit.path).as_uri() if hit.path and Path(hit.path).is_absolute() else ""
    passage = hit.content.strip()
    return Source(
        id=Source.make_id(location, passage),
        title=title,
        location=location,
        url=url,
        passage=passage,
        kind="memory",
        context=hit.heading,
    )


class Retriever:
    """One search over every configured source kind, deduplicated by stable source id.

    Passages lose their own citation markers (they would point at the wrong source in a report),
    and the workspace's HEARTBEAT.md (a task list, not knowledge) is never a source."""

    def __init__(
        self,
        memory: MemorySearcher | None,
        web: WebSearcher | None = None,
        *,
        workspace: Path | None = None,
    ) -> None:
        self.memory = memory
        self.web = web
        self.heartbeat = (workspace / "HEARTBEAT.md").resolve() if workspace else None

    async def search(self, query: str, limit: int) -> list[Source]:
        tasks = []
        if self.memory is not None:
            tasks.append(self._memory(query, limit))
        if self.web is not None:
            tasks.append(self.web.search(query, limit))
        batches = await asyncio.gather(*tasks)
        # Interleave by rank so every kind of source gets a place among the best few.
        merged: dict[str, Source] = {}
        for rank in range(max((len(b) for b in batches), default=0)):
            for batch in batches:
                if rank < len(batch):
                    merged.setdefault(batch[rank].id, batch[rank])
        return [replace(s, passage=strip_markers(s.passage).strip()) for s in merged.values()]

    async def _memory(self, query: str, limit: int) -> list[Source]:
        assert self.memory is not None
        try:
            hits = await self.memory.search(query, limit + 2)  # room for skipped task lists
        except InvalidRequest:
            return []  # a dimension made only of stopwords finds nothing, it is not an error
        return [source_from_hit(h) for h in hits if not self._is_task_list(h)][:limit]

    def _is_task_list(self, hit: SearchHit) -> bool:
        """The workspace's HEARTBEAT.md lists tasks to run; it is not evidence for anything."""
        if self.heartbeat is not None and hit.path:
            try:
                return Path(hit.path).resolve() == self.heartbeat
            except OSError:
                return False
        return hit.file == "HEARTBEAT.md"
