"""The running core: configuration, database and services, with no knowledge of HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from localresearch import __version__
from localresearch.errors import Unavailable
from localresearch.paths import Paths
from localresearch.store import Database

if TYPE_CHECKING:
    from localresearch.chat.service import ChatService
    from localresearch.config import Config
    from localresearch.heartbeat.service import HeartbeatService
    from localresearch.memory.service import MemoryService
    from localresearch.research.manager import JobManager
    from localresearch.research_sessions.flow import SessionService

log = logging.getLogger(__name__)


class Service(Protocol):
    """A part of the core with background work: started after the database, stopped before."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class RuntimeStatus:
    version: str
    uptime_seconds: int
    model: str  # provider or provider/model
    memory: dict[str, Any] | None  # files and chunks indexed, whether a pass runs
    heartbeat: dict[str, Any] | None  # enabled, paused, last and next run, last result


class Runtime:
    """Everything the daemon runs, built once from the config; routes and the CLI only call it."""

    def __init__(self, config: Config, paths: Paths) -> None:
        self.config = config
        self.paths = paths
        self.db = Database(paths.database)
        self.started_monotonic = time.monotonic()
        self.services: list[Service] = []
        # Parts of the core attach themselves here in `start` (see _build_services).
        self.extras: dict[str, Any] = {}
        self.memory: MemoryService | None = None
        self.jobs: JobManager | None = None
        self.chat: ChatService | None = None
        self.heartbeat: HeartbeatService | None = None
        self.research_sessions: SessionService | None = None
        self._running: list[Service] = []
        self._started = asyncio.Event()
        self._failure: BaseException | None = None

    async def start(self) -> None:
        """Open the database and start the services; `wait_started` tells callers when done."""
        try:
            self.paths.ensure()
            await asyncio.to_thread(self.db.open)
            # The services' modules take a few hundred ms to import: a thread keeps the event
            # loop (already answering /health) responsive meanwhile.
            await asyncio.to_thread(_import_services)
            self._build_services()
            for service in self.services:
                await service.start()
                self._running.append(service)
        except BaseException as exc:
            self._failure = exc
            raise
        finally:
            self._started.set()

    @property
    def started(self) -> bool:
        return self._started.is_set() and self._failure is None

    async def wait_started(self) -> None:
        """Return once the services run; raise Unavailable if they failed to start."""
        await self._started.wait()
        if self._failure is not None:
            raise Unavailable(
                f"the daemon's services failed to start ({self._failure!r}); "
                "see `research daemon logs`, fix the cause and run `research daemon restart`"
            )

    def _build_services(self) -> None:
        """Create the core's services in dependency order (memory before chat before research)."""
        from localresearch.memory.service import MemoryService

        self.memory = MemoryService(self.config, self.paths, self.db)
        self.services.append(self.memory)
        from localresearch.chat.service import ChatService

        self.chat = ChatService(self.config, self.paths, self.db, self.memory)
        self.services.append(self.chat)
        from localresearch.research.manager import JobManager

        self.jobs = JobManager(self.config, self.db, self.memory)
        self.services.append(self.jobs)
        from localresearch.research_sessions.flow import SessionService

        self.research_sessions = SessionService(self.config, self.db, self.memory, self.jobs)
        self.services.append(self.research_sessions)
        from localresearch.heartbeat.runner import ServicesTaskRunner
        from localresearch.heartbeat.service import HeartbeatService, HeartbeatSettings
        from localresearch.workspace import workspace_dir

        self.heartbeat = HeartbeatService(
            HeartbeatSettings.from_config(self.config),
            workspace_dir(self.config, self.paths),
            self.db,
            ServicesTaskRunner(self.chat, self.jobs, self.memory),
        )
        self.services.append(self.heartbeat)

    async def stop(self) -> None:
        for service in reversed(self._running):
            try:
                await service.stop()
            except Exception:
                log.exception("error while stopping %s", type(service).__name__)
        self._running.clear()
        self.services.clear()
        await asyncio.to_thread(self.db.close)

    @property
    def uptime_seconds(self) -> int:
        return int(time.monotonic() - self.started_monotonic)

    def model_name(self) -> str:
        llm = self.config.llm
        return f"{llm.provider}/{llm.model}" if llm.model else llm.provider

    async def status(self) -> RuntimeStatus:
        """What runs and for how long; parts not running yet are None."""
        return RuntimeStatus(
            version=__version__,
            uptime_seconds=self.uptime_seconds,
            model=self.model_name(),
            memory=await self._memory_status(),
            heartbeat=await self._heartbeat_status(),
        )

    async def _memory_status(self) -> dict[str, Any] | None:
        return await self.memory.status() if self.memory is not None else None

    async def _heartbeat_status(self) -> dict[str, Any] | None:
        return self.heartbeat.brief() if self.heartbeat is not None else None


def _import_services() -> None:
    """Import the services' modules (in a worker thread, before _build_services needs them)."""
    import localresearch.chat.service
    import localresearch.heartbeat.runner
    import localresearch.heartbeat.service
    import localresearch.memory.service
    import localresearch.research.manager
    import localresearch.research_sessions.flow  # noqa: F401
