"""The research job manager: start, queue, cancel, stream and resume jobs (`runtime.jobs`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from localresearch.config import Config
from localresearch.errors import InvalidRequest, LocalResearchError, Unavailable
from localresearch.events import Event
from localresearch.memory.types import MemorySearcher
from localresearch.research.engine import Engine
from localresearch.research.hub import EventHub, Sink
from localresearch.research.pipeline import Pipeline, failure
from localresearch.research.retrieval import Retriever, WebSearcher
from localresearch.research.store import Ending, JobRow, JobStore, Progress
from localresearch.research.types import TERMINAL_STATUSES, JobOptions
from localresearch.store import Database

log = logging.getLogger(__name__)

EngineFactory = Callable[[], Engine]
MAX_QUERY_CHARS = 4000
MEMORY_READY_TIMEOUT = 60.0
# How often the end of a job the storage refused (a full disk) is written again.
ENDING_RETRY_SECONDS = 5.0


def default_engine_factory(config: Config, memory: MemorySearcher | None) -> EngineFactory:
    """The builtin engine offline; otherwise an LLM engine on the configured provider."""

    def make() -> Engine:
        if config.llm.provider in ("", "builtin"):
            from localresearch.research.builtin import BuiltinEngine

            return BuiltinEngine()
        from localresearch.providers.registry import create_provider
        from localresearch.research.llm import LLMEngine

        return LLMEngine(create_provider(config.llm, memory))

    return make


@dataclass(frozen=True)
class JobView:
    """A job as its status snapshot shows it: the row, and the report text when shown."""

    job: JobRow
    report: str | None


class JobManager:
    """Runs at most `max_concurrent_jobs` jobs; the others wait with status `queued`."""

    def __init__(
        self,
        config: Config,
        db: Database,
        memory: MemorySearcher | None,
        *,
        engine_factory: EngineFactory | None = None,
        web: WebSearcher | None = None,
    ) -> None:
        self.config = config
        self.store = JobStore(db)
        self.hub = EventHub(self.store)
        self.memory = memory
        self.web = web
        self.engine_factory = engine_factory or default_engine_factory(config, memory)
        self._slots = asyncio.Semaphore(max(1, config.research.max_concurrent_jobs))
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancels: dict[str, asyncio.Event] = {}
        self._stopping = False
        self._setup_error: LocalResearchError | None = None
        self._retrier: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume every job a previous daemon left queued or running, oldest first."""
        if self.web is None and self.config.research.web_search not in ("", "none"):
            from localresearch.research.websearch import create_web_searcher

            try:
                self.web = create_web_searcher(self.config.research)
            except LocalResearchError as exc:  # every job will say so; the daemon still serves
                log.error("web search disabled: %s", exc.message)
                self._setup_error = exc
        for job in await self.store.unfinished():
            log.info("resuming research job %s (%s)", job.id, job.status)
            if job.status == "running":
                try:
                    await self.store.set_status(job.id, "queued")  # until a slot is free again
                except Unavailable as exc:  # the job runs, and ends saying why it cannot
                    log.error("research job %s: %s", job.id, exc.message)
            self._launch(job)

    async def stop(self) -> None:
        """Stop running jobs where they stand; they stay `running` and resume on next start."""
        self._stopping = True
        self.hub.close_all()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._retrier is not None:
            self._retrier.cancel()
            await asyncio.gather(self._retrier, return_exceptions=True)
        if not await self.store.save_endings():  # a last try; else the next start resumes them
            log.error("the end of some research jobs could not be saved: they resume on start")
        if self.web is not None:
            await self.web.close()

    # -- jobs ------------------------------------------------------------------------------

    async def submit(
        self,
        query: str,
        *,
        session_id: str | None = None,
        dimensions: int | None = None,
        rounds: int | None = None,
        model: str = "",
    ) -> JobRow:
        if self._stopping:
            raise Unavailable("The daemon is stopping; start the job again once it is back")
        query = query.strip()
        if not query:
            raise InvalidRequest("query must not be empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidRequest(f"query is too long (limit: {MAX_QUERY_CHARS} characters)")
        settings = self.config.research
        options = JobOptions(  # config values are clamped; explicit request values are checked
            dimensions=min(6, max(1, settings.dimensions)) if dimensions is None else dimensions,
            rounds=min(5, max(0, settings.max_rounds)) if rounds is None else rounds,
            sources_per_dimension=min(20, max(1, settings.sources_per_dimension)),
            model=model,
        )
        if not 1 <= options.dimensions <= 6:
            raise InvalidRequest("dimensions must be between 1 and 6")
        if not 0 <= options.rounds <= 5:
            raise InvalidRequest("rounds must be between 0 and 5")
        job = await self.store.create(query, options, session_id)
        self._launch(job)
        return job

    def _launch(self, job: JobRow) -> None:
        cancel = asyncio.Event()
        if job.cancel_requested:
            cancel.set()
        self._cancels[job.id] = cancel
        task = asyncio.create_task(self._run(job.id, cancel), name=f"research:{job.id}")
        self._tasks[job.id] = task
        task.add_done_callback(functools.partial(self._forget, job.id))

    def _forget(self, job_id: str, task: asyncio.Task[None] | None = None) -> None:
        self._tasks.pop(job_id, None)
        self._cancels.pop(job_id, None)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("research job %s: its task failed", job_id, exc_info=task.exception())
        self._retry_endings()

    def _retry_endings(self) -> None:
        """While the end of a job is only in memory, try to write it every few seconds."""
        retrying = self._retrier is not None and not self._retrier.done()
        if self.store.unsaved() and not self._stopping and not retrying:
            self._retrier = asyncio.get_running_loop().create_task(self._save_endings())

    async def _save_endings(self) -> None:
        """Write the ends of jobs the storage refused, once it accepts writes again."""
        while True:
            if await self.store.save_endings():
                return
            await asyncio.sleep(ENDING_RETRY_SECONDS)

    async def _run(self, job_id: str, cancel: asyncio.Event) -> None:
        """Run the job; whatever fails, it ends `error` and its waiters are released."""
        try:
            await self._run_pipeline(job_id, cancel)
        except Exception as exc:  # the pipeline ends its own failures: this is what it could not
            message, code = failure(exc, job_id)
            await self._end_now(job_id, "error", message, code)

    async def _run_pipeline(self, job_id: str, cancel: asyncio.Event) -> None:
        async with self._slots:
            await self._memory_ready()
            job = await self.store.get(job_id)
            if job.status in TERMINAL_STATUSES:
                return
            try:
                if self._setup_error is not None:
                    raise self._setup_error
                engine = self._engine(job.options.model)
            except Exception as exc:  # a provider that cannot be built fails this job only
                engine = cast(Engine, _FailingEngine(exc))
            workspace = getattr(self.memory, "workspace", None)
            retriever = Retriever(
                self.memory, self.web, workspace=workspace if isinstance(workspace, Path) else None
            )
            pipeline = Pipeline(
                job, self.store, self.hub, engine, retriever, self.config.research, cancel
            )
            try:
                await pipeline.run()
            finally:
                with contextlib.suppress(Exception):
                    await engine.close()

    def _engine(self, model: str) -> Engine:
        """The job's engine: the configured one, or the configured provider on another model
        (a per-job override, checked by whoever submitted it)."""
        llm = self.config.llm
        if not model or model == llm.model or llm.provider in ("", "builtin"):
            return self.engine_factory()
        from localresearch.providers.registry import create_provider
        from localresearch.research.llm import LLMEngine

        return LLMEngine(create_provider(dataclasses.replace(llm, model=model), self.memory))

    async def _memory_ready(self) -> None:
        """A job started with the daemon waits (a while) for the first indexing pass."""
        wait_ready = getattr(self.memory, "wait_ready", None)
        if wait_ready is None:
            return
        try:
            await asyncio.wait_for(wait_ready(), MEMORY_READY_TIMEOUT)
        except TimeoutError:
            log.warning(
                "memory index not ready after %ss; researching anyway", MEMORY_READY_TIMEOUT
            )

    async def cancel(self, job_id: str) -> JobRow:
        """Ask a job to stop after its current dimension; a finished job is left as it is, and
        one with no task to stop it (none runs it) ends `cancelled` now."""
        job = await self.store.get(job_id)
        if job.status in TERMINAL_STATUSES:
            return job
        event = self._cancels.get(job_id)
        if event is not None:
            event.set()
        try:
            await self.store.request_cancel(job_id)
        except Unavailable as exc:  # it stops all the same (unless the daemon restarts first)
            log.warning("research job %s: the cancel is not saved: %s", job_id, exc.message)
        if event is None and not self._stopping:
            await self._end_now(job_id, "cancelled", None)
        return await self.store.get(job_id)

    async def abort(self, job_id: str) -> JobRow:
        """Stop a job now, even mid model call (its task is cancelled, so the model request is
        aborted rather than awaited), and end it `cancelled`: for callers that cannot wait for
        the current dimension to finish, such as a canceled query."""
        job = await self.store.get(job_id)
        if job.status in TERMINAL_STATUSES:
            return job
        event = self._cancels.get(job_id)
        if event is not None:
            event.set()
        with contextlib.suppress(Unavailable):  # the job ends `cancelled` below all the same
            await self.store.request_cancel(job_id)
        task = self._tasks.get(job_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._end_now(job_id, "cancelled", None)
        return await self.store.get(job_id)

    async def _end_now(
        self, job_id: str, status: str, error: str | None, code: str = "internal_error"
    ) -> None:
        """End a job its pipeline did not end (stopped mid-call, or it failed outside it):
        `done` (after an `error` event for an error), written with the status or kept in
        memory while the storage refuses (`JobStore.end`). A job already ended is left."""
        try:
            job = await self.store.get(job_id)
            if job.status in TERMINAL_STATUSES:
                return
            counts = await self.store.step_event_counts(job_id)
        except Exception:
            log.exception("research job %s could not be ended %s", job_id, status)
            return
        progress = Progress(
            phase="done",
            dimensions_total=job.dimensions_total,
            dimensions_complete=job.dimensions_complete,
            source_count=job.source_count,
        )
        ending = Ending.after(
            job_id,
            progress,
            status,
            error,
            code,
            ordinal=counts.get("end", 0),
            seq=job.last_event_id,
        )
        if not await self.store.end(job_id, ending):
            self._retry_endings()
        for _step, _ordinal, event in ending.events:
            self.hub.publish(job_id, event)

    async def wait(self, job_id: str) -> JobRow:
        """Until the job's task ends (tests and scripts); returns the final row."""
        task = self._tasks.get(job_id)
        if task is not None:
            with contextlib.suppress(Exception):  # the task ended the job; `_forget` logs it
                await asyncio.shield(task)
        return await self.store.get(job_id)

    def subscribe(
        self, job_id: str, after: int = 0, stop: asyncio.Event | None = None
    ) -> AsyncIterator[Event]:
        return self.hub.subscribe(job_id, after, stop)

    async def stream_to(
        self, job_id: str, sink: Sink, after: int, stop: asyncio.Event | None, idle: float
    ) -> None:
        await self.hub.stream_to(job_id, sink, after, stop, idle)

    def subscribe_batches(
        self, job_id: str, after: int, stop: asyncio.Event | None, idle: float
    ) -> AsyncGenerator[list[Event], None]:
        return self.hub.subscribe_batches(job_id, after, stop, idle)

    async def snapshot(self, job_id: str) -> JobView:
        """A job and its report (complete) or partial report (cancelled), if any."""
        job = await self.store.get(job_id)
        return await self._view(job, with_report=True)

    async def _view(self, job: JobRow, *, with_report: bool) -> JobView:
        text: str | None = None
        if with_report and job.status in ("complete", "cancelled"):
            report = await self.store.report(job.id)
            if report is not None and (job.status == "complete" or report.partial):
                text = report.markdown
        return JobView(job, text)

    async def list_jobs(
        self, limit: int = 20, offset: int = 0, status: str | None = None
    ) -> tuple[list[JobView], int]:
        """A page of jobs, newest first (without reports), and how many match in all."""
        jobs, total = await self.store.list_jobs(limit, offset, status)
        return [JobView(job, None) for job in jobs], total

    async def usage(self, job_id: str) -> dict[str, dict[str, int]]:
        """Token usage per completed step."""
        await self.store.get(job_id)
        return {step: usage for step, (_result, usage) in (await self.store.steps(job_id)).items()}


class _FailingEngine:
    """Stands in when the provider cannot be built, so the job ends with a clear error."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def close(self) -> None:
        """Nothing was opened."""

    def __getattr__(self, name: str) -> Any:
        raise self.exc
