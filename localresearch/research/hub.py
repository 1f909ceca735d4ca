"""In-process fan-out of job events: late subscribers replay the stored history, then go live."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator

from localresearch.events import Event
from localresearch.research.store import JobStore
from localresearch.research.types import TERMINAL_STATUSES


class EventHub:
    """Every event is persisted before it is published, so history + live never loses one;
    ids dedupe the overlap, so none is delivered twice."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._subscribers: defaultdict[str, set[asyncio.Queue[Event | None]]] = defaultdict(set)

    def publish(self, job_id: str, event: Event) -> None:
        for queue in self._subscribers.get(job_id, ()):
            queue.put_nowait(event)

    def close_all(self) -> None:
        """End every live stream (the daemon is stopping; clients resume with Last-Event-ID)."""
        for queues in self._subscribers.values():
            for queue in queues:
                queue.put_nowait(None)

    def subscriber_count(self, job_id: str) -> int:
        return len(self._subscribers.get(job_id, ()))

    async def subscribe(
        self, job_id: str, after: int = 0, stop: asyncio.Event | None = None
    ) -> AsyncIterator[Event]:
        """Events with id > `after`, ending after the job's `done` event (or when `stop` is set)."""
        await self.store.get(job_id)  # NotFound before the stream opens
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._subscribers[job_id].add(queue)
        stopper = asyncio.ensure_future(_stop_when(stop, queue)) if stop is not None else None
        try:
            last = after
            for event in await self.store.events(job_id, after):
                yield event
                last = event.id or last
                if event.type == "done":
                    return
            job = await self.store.get(job_id)
            if job.status in TERMINAL_STATUSES and job.last_event_id <= last:
                return
            while True:
                live = await queue.get()
                if live is None:
                    return
                if live.id is None or live.id <= last:
                    continue
                yield live
                last = live.id
                if live.type == "done":
                    return
        finally:
            if stopper is not None:
                stopper.cancel()
            subscribers = self._subscribers.get(job_id)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[job_id]


async def _stop_when(stop: asyncio.Event, queue: asyncio.Queue[Event | None]) -> None:
    await stop.wait()
    queue.put_nowait(None)
