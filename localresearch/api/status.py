"""Health, status and models: what the daemon is and runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from localresearch.api.base import UNSET, Model, UnsetType

if TYPE_CHECKING:
    from localresearch.runtime import RuntimeStatus


class Health(Model):
    status: str


class MemoryBrief(Model):
    files_indexed: int
    chunks: int
    indexing: bool = False


class HeartbeatBrief(Model):
    enabled: bool
    paused: bool
    last_run: str | None
    next_run: str | None
    last_result: dict[str, Any] | None


class Status(Model):
    version: str
    uptime_seconds: int
    model: str
    memory: MemoryBrief | None
    heartbeat: HeartbeatBrief | None

    @classmethod
    def of(cls, status: RuntimeStatus) -> Status:
        return cls(
            version=status.version,
            uptime_seconds=status.uptime_seconds,
            model=status.model,
            memory=msgspec.convert(status.memory, MemoryBrief | None),
            heartbeat=msgspec.convert(status.heartbeat, HeartbeatBrief | None),
        )


class Provider(Model):
    id: str
    configured: bool
    available: bool
    models: list[str]
    description: str | UnsetType = UNSET
    needs_key: bool | UnsetType = UNSET
    default_model: str | UnsetType = UNSET
    error: str | UnsetType = UNSET


class Models(Model):
    default: str | None
    providers: list[Provider]
