"""In-process fan-out of job events: late subscribers replay the stored history, then go live."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field

from localresearch.events import Event
from localresearch.research.store import JobStore
from localresearch.research.types import TERMINAL_STATUSES

# With many subscribers, events published within this window per subscriber are delivered
# together: 500 subscribers cost one wake-up and one socket write each per window, not per event.
BATCH_SECONDS_PER_SUBSCRIBER = 0.00001
MAX_BATCH_SECONDS = 0.005


Sink = Callable[[list[Event]], bool]


@dataclass(eq=False)
class _Subscriber:
    queue: asyncio.Queue[list[Event] | None] = field(default_factory=asyncio.Queue)
    idle: float | None = None
    last: float = field(default_factory=time.monotonic)
    # Direct delivery (see `stream_to`): called synchronously from the flush, no task wake-up.
    sink: Sink | None = None
    last_id: int = 0
    finished: asyncio.Future[None] | None = None

    def deliver(self, events: list[Event]) -> None:
        """Hand new events to the sink; finish on `done`, or when the sink refuses (gone)."""
        assert self.sink is not None and self.finished is not None
        batch = [e for e in events if e.id is not None and e.id > self.last_id]
        ended = _ends(events)
        if batch:
            self.last_id = batch[-1].id or self.last_id
        elif events:  # all seen already; a `done` still ends a stream resumed past it
            if ended:
                self.end()
            return
        if not self.sink(batch) or ended:
            self.end()

    def end(self) -> None:
        if self.finished is not None and not self.finished.done():
            self.finished.set_result(None)


class EventHub:
    """Every event is persisted before it is published, so history + live never loses one;
    ids dedupe the overlap, so none is delivered twice."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._pending: dict[str, list[Event]] = {}
        self._ticker: asyncio.Task[None] | None = None

    def publish(self, job_id: str, event: Event) -> None:
        subscribers = self._subscribers.get(job_id)
        if not subscribers:
            return
        pending = self._pending.get(job_id)
        if pending is not None:
            pending.append(event)  # a flush is already scheduled
            return
        self._pending[job_id] = [event]
        delay = min(MAX_BATCH_SECONDS, len(subscribers) * BATCH_SECONDS_PER_SUBSCRIBER)
        asyncio.get_running_loop().call_later(delay, self._flush, job_id)

    def _flush(self, job_id: str) -> None:
        events = self._pending.pop(job_id, [])
        now = time.monotonic()
        for subscriber in list(self._subscribers.get(job_id, ())):
            subscriber.last = now
            if subscriber.sink is not None:
                subscriber.deliver(events)
            else:
                subscriber.queue.put_nowait(events)

    def close_all(self) -> None:
        """End every live stream (the daemon is stopping; clients resume with Last-Event-ID)."""
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber.queue.put_nowait(None)
                subscriber.end()
        if self._ticker is not None:
            self._ticker.cancel()

    def subscriber_count(self, job_id: str) -> int:
        return len(self._subscribers.get(job_id, ()))

    async def subscribe(
        self, job_id: str, after: int = 0, stop: asyncio.Event | None = None
    ) -> AsyncIterator[Event]:
        """Events with id > `after`, ending after the job's `done` event (or when `stop` is set)."""
        async for batch in self.subscribe_batches(job_id, after, stop):
            for event in batch:
                yield event

    async def subscribe_batches(
        self,
        job_id: str,
        after: int = 0,
        stop: asyncio.Event | None = None,
        idle: float | None = None,
    ) -> AsyncGenerator[list[Event], None]:
        """Like `subscribe`, in batches (a slow reader catches up in one write), and `[]` after
        `idle` quiet seconds so the caller can keep the connection alive."""
        async with self._joined(job_id, idle, stop) as subscriber:
            history = await self.store.events(job_id, after)
            if history:
                yield history
            last = (history[-1].id or after) if history else after
            if history and history[-1].type == "done":
                return
            job = await self.store.get(job_id)
            if job.status in TERMINAL_STATUSES and job.last_event_id <= last:
                return
            while True:
                first = await subscriber.queue.get()
                waiting = [first]
                while not subscriber.queue.empty():
                    waiting.append(subscriber.queue.get_nowait())
                batch: list[Event] = []
                ended = False
                for events in waiting:
                    if events is None or _ends(events):
                        ended = True
                    if events is None:
                        break
                    for live in events:
                        if live.id is not None and live.id > last:
                            batch.append(live)
                            last = live.id
                if batch or (first == [] and not ended):
                    yield batch
                if ended:
                    return

    async def stream_to(
        self,
        job_id: str,
        sink: Sink,
        after: int = 0,
        stop: asyncio.Event | None = None,
        idle: float | None = None,
    ) -> None:
        """Deliver events with id > `after` to `sink` until `done` (or `stop`, or the sink
        refusing): the history first, then live batches called straight from the publisher.

        This is the path for many subscribers: no task wakes per event, one call per batch.
        `sink([])` means "still alive, nothing new" (send a keep-alive)."""
        async with self._joined(job_id, idle, stop) as subscriber:
            history = await self.store.events(job_id, after)
            last = (history[-1].id or after) if history else after
            if history and (not sink(history) or history[-1].type == "done"):
                return
            job = await self.store.get(job_id)
            if job.status in TERMINAL_STATUSES and job.last_event_id <= last:
                return
            # Switch to direct delivery: first what was queued while the history was read.
            subscriber.last_id = last
            subscriber.finished = asyncio.get_running_loop().create_future()
            subscriber.sink = sink
            while not subscriber.queue.empty():
                queued = subscriber.queue.get_nowait()
                if queued is None:
                    return
                subscriber.deliver(queued)
            await subscriber.finished

    @contextlib.asynccontextmanager
    async def _joined(
        self, job_id: str, idle: float | None, stop: asyncio.Event | None
    ) -> AsyncIterator[_Subscriber]:
        """Register a subscriber for the block (NotFound before anything is sent)."""
        await self.store.get(job_id)
        subscriber = _Subscriber(idle=idle)
        self._subscribers.setdefault(job_id, set()).add(subscriber)
        if idle is not None and (self._ticker is None or self._ticker.done()):
            self._ticker = asyncio.create_task(self._keepalive())
        stopper = asyncio.ensure_future(_stop_when(stop, subscriber)) if stop else None
        try:
            yield subscriber
        finally:
            if stopper is not None:
                stopper.cancel()
            subscribers = self._subscribers.get(job_id)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._subscribers[job_id]

    async def _keepalive(self) -> None:
        """One timer for all streams: a quiet subscriber gets an empty batch every `idle` s."""
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                idles = [s.idle for subs in self._subscribers.values() for s in subs if s.idle]
                if not idles:
                    return
                await asyncio.sleep(min(idles) / 2)
                now = time.monotonic()
                for subscribers in list(self._subscribers.values()):
                    for s in list(subscribers):
                        if s.idle and now - s.last >= s.idle:
                            s.last = now
                            if s.sink is not None:
                                s.deliver([])
                            else:
                                s.queue.put_nowait([])


def _ends(events: list[Event]) -> bool:
    """The job's `done` is among them: nothing follows it, whatever id the client resumed
    after (a Last-Event-ID beyond the job's last id must not wait for more)."""
    return any(event.type == "done" for event in events)


async def _stop_when(stop: asyncio.Event, subscriber: _Subscriber) -> None:
    await stop.wait()
    subscriber.queue.put_nowait(None)
    subscriber.end()
