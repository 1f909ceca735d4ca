"""The running core: configuration, database and services, with no knowledge of HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from localresearch import __version__
from localresearch.errors import Unavailable
from localresearch.paths import Paths
from localresearch.store import Database

if TYPE_CHECKING:
    from localresearch.chat.service import ChatService
    from localresearch.config import Config
    from localresearch.config.live import ConfigWatcher
    from localresearch.heartbeat.report import HeartbeatBrief
    from localresearch.heartbeat.service import HeartbeatService
    from localresearch.memory.service import MemoryService
    from localresearch.memory.stats import MemoryStatus
    from localresearch.metrics import Metrics
    from localresearch.query.service import QueryService
    from localresearch.research.manager import JobManager
    from localresearch.research_sessions.flow import SessionService

log = logging.getLogger(__name__)


class Service(Protocol):
    """A part of the core with background work: started after the database, stopped before."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class RuntimeStatus:
    """What GET /api/status reports, gathered by the core without knowing HTTP."""

    version: str
    uptime_seconds: int
    model: str  # provider or provider/model
    memory: MemoryStatus | None  # files and chunks indexed, whether a pass runs
    heartbeat: HeartbeatBrief | None  # enabled, paused, last and next run, last result


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
        self.query: QueryService | None = None
        self.metrics: Metrics | None = None
        self.config_watcher: ConfigWatcher | None = None
        # Called with the old and new config when it changes while running (the server's
        # access layer).
        self.config_listeners: list[Callable[[Config, Config], None]] = []
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
                f"the daemon's services failed to start ({_reason(self._failure)}); "
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
        self._build_query_services()

    def _build_query_services(self) -> None:
        """Metrics, the query API's service and the config watcher (the live-config path)."""
        from localresearch.config.live import ConfigWatcher
        from localresearch.metrics import Metrics
        from localresearch.query.service import QueryService

        self.metrics = Metrics()
        if self.memory is not None:  # every search, whoever makes it, is timed
            setattr(self.memory, "search", self.metrics.timed_search(self.memory.search))  # noqa: B010
        assert self.jobs is not None
        self.query = QueryService(self.config, self.db, self.jobs, self.metrics)
        self.services.append(self.query)
        self.config_watcher = ConfigWatcher(
            self.paths.config_file, self.config.api.config_watch_interval, self.apply_config
        )
        self.services.append(self.config_watcher)

    def apply_config(self, config: Config) -> list[str]:
        """Use `config` from now on where a setting allows it; return the changed settings
        that need a restart."""
        from localresearch.config.live import restart_required

        old = self.config
        if config == old:  # e.g. the watcher seeing a file the daemon itself just wrote
            return []
        restart = restart_required(old, config)
        self.config = config
        if self.jobs is not None:
            from localresearch.research.manager import default_engine_factory

            self.jobs.config = config
            self.jobs.engine_factory = default_engine_factory(config, self.memory)
        if self.chat is not None:
            self.chat.config = config
        if self.research_sessions is not None:
            self.research_sessions.config = config
        if self.query is not None:
            self.query.apply_config(config)
        for listener in self.config_listeners:
            listener(old, config)
        return restart

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

    async def _memory_status(self) -> MemoryStatus | None:
        return await self.memory.status() if self.memory is not None else None

    async def _heartbeat_status(self) -> HeartbeatBrief | None:
        return self.heartbeat.brief() if self.heartbeat is not None else None


def _import_services() -> None:
    """Import the services' modules (in a worker thread, before _build_services needs them)."""
    import localresearch.chat.service
    import localresearch.heartbeat.runner
    import localresearch.heartbeat.service
    import localresearch.memory.service
    import localresearch.query.service
    import localresearch.research.manager
    import localresearch.research_sessions.flow  # noqa: F401


def _reason(exc: BaseException) -> str:
    """An exception as a user reads it: an OSError with the path it is about."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return repr(exc)
