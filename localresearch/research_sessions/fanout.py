"""Live events of research sessions to their subscribers: synchronous callbacks, so a fan-out to
hundreds of streams costs no task switch per subscriber and event."""

from __future__ import annotations

from collections.abc import Callable

from localresearch.research_sessions.store import StoredEvent

Sink = Callable[[StoredEvent | None], None]


class Fanout:
    def __init__(self) -> None:
        self._sinks: dict[str, set[Sink]] = {}

    def attach(self, session_id: str, sink: Sink) -> Callable[[], None]:
        """Call `sink` with each event published for the session (None: the session is gone);
        returns the detach."""
        self._sinks.setdefault(session_id, set()).add(sink)

        def detach() -> None:
            sinks = self._sinks.get(session_id)
            if sinks is not None:
                sinks.discard(sink)
                if not sinks:
                    self._sinks.pop(session_id, None)

        return detach

    def publish(self, session_id: str, event: StoredEvent) -> None:
        for sink in list(self._sinks.get(session_id, ())):
            sink(event)

    def close(self, session_id: str) -> None:
        for sink in self._sinks.pop(session_id, set()):
            sink(None)

    def close_all(self) -> None:
        for session_id in list(self._sinks):
            self.close(session_id)

    def count(self, session_id: str) -> int:
        return len(self._sinks.get(session_id, ()))
