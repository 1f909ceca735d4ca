"""The one wire contract for streamed events: SSE, WebSocket, the CLI renderer all use it.

An event is a JSON object {"type": str, "data": object, "timestamp": ISO-8601 UTC}; over SSE it
also carries an `id:` line so that `Last-Event-ID` can resume a stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """One streamed event; the same object feeds SSE, WebSocket and stored replays."""

    type: str
    data: Any = None
    timestamp: str = field(default_factory=utc_now_iso)
    id: int | None = None  # sequence number within its stream, when the stream is resumable

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "data": self.data, "timestamp": self.timestamp}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, obj: dict[str, Any], id: int | None = None) -> Event:
        timestamp = obj.get("timestamp", "")
        return cls(type=obj["type"], data=obj.get("data"), timestamp=timestamp, id=id)
