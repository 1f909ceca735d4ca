"""Health, status and models: what the daemon is and runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from localresearch.api.base import UNSET, Model, UnsetType

if TYPE_CHECKING:
    from localresearch.heartbeat import report
    from localresearch.memory import stats as memory
    from localresearch.runtime import RuntimeStatus


class Health(Model):
    status: str


class MemoryBrief(Model):
    files_indexed: int
    chunks: int
    indexing: bool = False

    @classmethod
    def of(cls, status: memory.MemoryStatus) -> MemoryBrief:
        return cls(
            files_indexed=status.files_indexed, chunks=status.chunks, indexing=status.indexing
        )


class HeartbeatBrief(Model):
    enabled: bool
    paused: bool
    last_run: str | None
    next_run: str | None
    last_result: dict[str, Any] | None

    @classmethod
    def of(cls, brief: report.HeartbeatBrief) -> HeartbeatBrief:
        from localresearch.heartbeat.state import iso

        return cls(
            enabled=brief.enabled,
            paused=brief.paused,
            last_run=iso(brief.last_run),
            next_run=iso(brief.next_run),
            last_result=cast("dict[str, Any] | None", brief.last_result),  # stored JSON
        )


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
            memory=MemoryBrief.of(status.memory) if status.memory is not None else None,
            heartbeat=HeartbeatBrief.of(status.heartbeat) if status.heartbeat is not None else None,
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
