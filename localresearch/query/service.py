"""The query service (`runtime.query`): a query is one research job on the same engine as
`research deep`, answered as one result, streamed step by step, or run in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from localresearch.errors import InvalidRequest, LocalResearchError, NotFound
from localresearch.query.compose import (
    QueryResult,
    Step,
    citation_of,
    cycles,
    step_of,
    tokens,
)
from localresearch.query.store import ACTIVE, QueryRun, QueryStore
from localresearch.query.webhooks import WebhookSender

if TYPE_CHECKING:
    from localresearch.config import Config
    from localresearch.metrics import Metrics
    from localresearch.research.manager import JobManager
    from localresearch.store import Database

log = logging.getLogger(__name__)
MODELS_TIMEOUT = 5.0  # listing a provider's models to check a per-query model


@dataclass(frozen=True)
class QueryRequest:
    """A question and its per-query knobs (already validated by the caller's contract)."""

    query: str
    version: str = "1"
    loops: int | None = None  # gap rounds (the job's `rounds`)
    dimensions: int | None = None
    webhook_url: str | None = None
    model: str | None = None  # a model of the configured provider, for this query only

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueryRequest:
        return cls(
            query=str(data["query"]),
            version=str(data.get("version", "1")),
            loops=data.get("loops"),
            dimensions=data.get("dimensions"),
            webhook_url=data.get("webhook_url"),
            model=data.get("model"),
        )


class QueryFailed(LocalResearchError):
    """The research behind a query ended in error; `code` is the job's own error code."""


@dataclass(frozen=True)
class StreamItem:
    """One item of a query stream: a completed step (with the partial result so far), a
    keep-alive (nothing new for a while), or the end (the result, or the error)."""

    kind: str  # "started", "step", "keepalive", "result"
    step: Step | None = None
    progress: Progress | None = None
    result: QueryResult | None = None


@dataclass(frozen=True)
class Progress:
    """The result so far, after a step: its reasoning, what it cites, the work it cost."""

    version: str
    steps: list[Step]
    citations: list[str]
    cycles_completed: int
    input_tokens: int
    output_tokens: int


class QueryService:
    """Runs queries on the research job manager; background queries are rows in query_runs."""

    def __init__(
        self, config: Config, db: Database, jobs: JobManager, metrics: Metrics | None = None
    ) -> None:
        self.config = config
        self.jobs = jobs
        self.metrics = metrics
        self.store = QueryStore(db)
        self.webhooks = WebhookSender(config.api.webhook_timeout, config.api.webhook_backoff)
        self._followers: dict[str, asyncio.Task[None]] = {}

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Follow every background query a previous daemon left running (its job resumes)."""
        for run in await self.store.active():
            if run.job_id is None:
                await self.store.finish(
                    run.id, "error", error="The daemon stopped before this query started"
                )
                continue
            self._follow(run.id, QueryRequest.from_dict(run.request), run.job_id, time.time())

    async def stop(self) -> None:
        """Stop following; the runs stay `running` and are followed again on the next start."""
        tasks = list(self._followers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.webhooks.close()

    def apply_config(self, config: Config) -> None:
        """Settings changed while running (webhooks, their timing, the keep-alive)."""
        self.config = config
        self.webhooks.timeout = config.api.webhook_timeout
        self.webhooks.backoff = config.api.webhook_backoff

    # -- one query, waited for -------------------------------------------------------------

    async def run(self, request: QueryRequest, *, mode: str = "sync") -> QueryResult:
        """Research the question to the end; a failed run raises QueryFailed. If the caller
        goes away (the task is cancelled), the research is aborted too."""
        started = time.perf_counter()
        job_id = await self._begin(request)
        try:
            await self.jobs.wait(job_id)
        except asyncio.CancelledError:
            await asyncio.shield(self._abort_quietly(job_id))
            self._done(mode, "canceled", started)
            raise
        result = await self.result(request.version, job_id)
        self._done(mode, result.status, started, result)
        self._notify(request, result)
        if result.status == "error":
            raise QueryFailed(result.error or "The research failed", code=_code(result))
        return result

    async def _begin(self, request: QueryRequest) -> str:
        job = await self.jobs.submit(
            request.query,
            dimensions=request.dimensions,
            rounds=request.loops,
            model=request.model or "",
        )
        if self.metrics is not None:
            self.metrics.queries_in_flight.inc()
        return job.id

    async def check_model(self, model: str) -> str:
        """A per-query model as the configured provider names it: "model" or "provider/model"
        of the configured provider, and one it serves (InvalidRequest naming the choices)."""
        from localresearch.providers.registry import available_providers, create_provider

        llm = self.config.llm
        provider = llm.provider or "builtin"
        head, sep, rest = model.partition("/")
        if sep and head in available_providers():
            if head != provider:
                raise InvalidRequest(
                    f"Parameter model: provider {head!r} is not the configured one "
                    f"({provider!r}); a query may choose another model of {provider!r} only"
                )
            model = rest
        built = create_provider(llm)
        try:
            default = built.model
            try:
                served = list(await asyncio.wait_for(built.list_models(), MODELS_TIMEOUT))
            except (LocalResearchError, TimeoutError, OSError) as exc:
                if type(built).models:
                    served = list(type(built).models)
                else:  # a server that cannot list its models is asked for the name as given
                    log.info("could not list the models of %s: %s", provider, exc)
                    return model
        finally:
            with contextlib.suppress(Exception):
                await built.close()
        choices = sorted({*served, default} - {""})
        if model not in choices:
            raise InvalidRequest(
                f"Parameter model: unknown model {model!r} for provider {provider!r} "
                f"(choices: {', '.join(choices) or 'none'})"
            )
        return model

    async def _abort_quietly(self, job_id: str) -> None:
        try:
            await self.jobs.abort(job_id)
        except Exception:
            log.exception("could not abort research job %s", job_id)

    def _done(
        self, mode: str, status: str, started: float, result: QueryResult | None = None
    ) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        metrics.queries_in_flight.dec()
        metrics.queries.labels(mode, status).inc()
        metrics.query_duration.observe(time.perf_counter() - started)
        if result is not None:
            provider = self.config.llm.provider or "builtin"
            metrics.tokens.labels(provider, "input").inc(result.input_tokens)
            metrics.tokens.labels(provider, "output").inc(result.output_tokens)

    async def result(self, version: str, job_id: str) -> QueryResult:
        """A finished (or stopped) job as the query's result."""
        store = self.jobs.store
        job = await store.get(job_id)
        events = await store.events(job_id)
        steps = [s for e in events if (s := step_of(e)) is not None]
        codes = [
            e.data.get("code") for e in events if e.type == "error" and isinstance(e.data, dict)
        ]
        usage = await self.jobs.usage(job_id)
        report = await store.report(job_id)
        sources = report.sources if report is not None else []
        input_tokens, output_tokens = tokens(usage)
        status = "complete" if job.status == "complete" else job.status
        return QueryResult(
            version=version,
            answer=report.markdown if report is not None else "",
            citations=[c for c in (citation_of(s) for s in sources) if c],
            reasoning=[s.text for s in steps if s.kind not in ("error", "cancelled")],
            cycles_completed=cycles(usage, steps),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            research_id=job_id,
            status=status,
            error=job.error,
            error_code=str(codes[-1]) if codes and codes[-1] else "internal_error",
            steps=steps,
        )

    # -- streamed --------------------------------------------------------------------------

    async def stream(
        self, request: QueryRequest, keepalive: float | None = None
    ) -> AsyncGenerator[StreamItem, None]:
        """Each reasoning step as it completes, keep-alives when quiet, then the result (a
        failed run raises QueryFailed). The first item says the research started (bad input
        raises before it). Closing the generator early aborts the research."""
        idle = keepalive if keepalive is not None else self.config.api.stream_keepalive
        started = time.perf_counter()
        job_id = await self._begin(request)
        finished = False
        steps: list[Step] = []
        cited: dict[str, None] = {}
        try:
            yield StreamItem("started")
            async for batch in self.jobs.subscribe_batches(job_id, 0, None, idle):
                if not batch:
                    yield StreamItem("keepalive")
                    continue
                for event in batch:
                    if event.type == "dimension_source" and isinstance(event.data, dict):
                        cited[str(event.data.get("location") or event.data.get("url"))] = None
                    step = step_of(event)
                    if step is None or step.kind in ("error", "cancelled"):
                        continue
                    steps.append(step)
                    usage = await self.jobs.usage(job_id)
                    yield StreamItem("step", step, _progress(request, steps, cited, usage))
            await self.jobs.wait(job_id)
            result = await self.result(request.version, job_id)
            finished = True
            self._done("stream", result.status, started, result)
            self._notify(request, result)
            if result.status == "error":
                raise QueryFailed(result.error or "The research failed", code=_code(result))
            yield StreamItem("result", result=result)
        finally:
            if not finished:
                await asyncio.shield(self._abort_quietly(job_id))
                self._done("stream", "canceled", started)

    # -- in the background -----------------------------------------------------------------

    async def submit(self, request: QueryRequest, owner: str | None = None) -> str:
        """Start a background query; its record outlives a restart of the daemon."""
        job_id = await self._begin(request)
        run_id = str(uuid.uuid4())
        await self.store.create(run_id, request.version, request.to_dict(), owner)
        await self.store.started(run_id, job_id)
        self._follow(run_id, request, job_id, time.perf_counter(), counted=True)
        return run_id

    def _follow(
        self,
        run_id: str,
        request: QueryRequest,
        job_id: str,
        started: float,
        *,
        counted: bool = False,
    ) -> None:
        if not counted and self.metrics is not None:
            self.metrics.queries_in_flight.inc()
        task = asyncio.create_task(self._finish(run_id, request, job_id, started))
        self._followers[run_id] = task
        task.add_done_callback(lambda _t: self._followers.pop(run_id, None))

    async def _finish(
        self, run_id: str, request: QueryRequest, job_id: str, started: float
    ) -> None:
        try:
            await self.jobs.wait(job_id)
            result = await self.result(request.version, job_id)
        except asyncio.CancelledError:
            raise  # the daemon is stopping (or the query was canceled): the record says which
        except LocalResearchError as exc:
            result = None
            error = exc.message
        except Exception as exc:
            log.exception("background query %s failed", run_id)
            result, error = None, f"Internal error: {type(exc).__name__}"
        if result is None:
            await self.store.finish(run_id, "error", error=error)
            self._done("async", "error", started)
            return
        if result.status == "complete":
            payload = {"query_id": run_id, **result.to_dict()}
            ended = await self.store.finish(run_id, "complete", payload)
        elif result.status == "cancelled":
            ended = await self.store.finish(run_id, "canceled")
        else:
            ended = await self.store.finish(run_id, "error", error=result.error)
        self._done("async", result.status, started, result)
        if ended:
            self._notify(request, result, run_id)

    async def get(self, run_id: str) -> QueryRun:
        run = await self.store.get(run_id)
        if run is None:
            raise NotFound(f"No query with id {run_id!r}")
        return run

    async def cancel(self, run_id: str) -> QueryRun:
        """Cancel a running background query at once (its model request is aborted); a
        finished one is NotFound, as the query API's spec says."""
        run = await self.get(run_id)
        if run.status not in ACTIVE or not await self.store.finish(run_id, "canceled"):
            raise NotFound(f"Query {run_id!r} has already finished ({run.status})")
        follower = self._followers.pop(run_id, None)
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            if self.metrics is not None:
                self.metrics.queries_in_flight.dec()
                self.metrics.queries.labels("async", "canceled").inc()
        if run.job_id is not None:
            await self._abort_quietly(run.job_id)
        return await self.get(run_id)

    # -- webhooks --------------------------------------------------------------------------

    def _notify(
        self, request: QueryRequest, result: QueryResult, run_id: str | None = None
    ) -> None:
        urls = list(self.config.api.webhooks)
        if request.webhook_url:
            urls.append(request.webhook_url)
        if not urls or result.status == "cancelled":
            return
        if result.status == "complete":
            payload = result.to_dict()
        else:
            message = result.error or "The research failed"
            payload = {
                "version": result.version,
                "error": {"code": _code(result), "message": message},
            }
        if run_id is not None:
            payload = {"query_id": run_id, **payload}
        for task in self.webhooks.send(urls, payload):
            task.add_done_callback(self._count_delivery)

    def _count_delivery(self, task: asyncio.Task[bool]) -> None:
        if self.metrics is not None and not task.cancelled():
            self.metrics.webhooks.labels("delivered" if task.result() else "failed").inc()


def _code(result: QueryResult) -> str:
    return result.error_code


def _progress(
    request: QueryRequest,
    steps: list[Step],
    cited: dict[str, None],
    usage: dict[str, dict[str, int]],
) -> Progress:
    input_tokens, output_tokens = tokens(usage)
    return Progress(
        request.version, list(steps), list(cited), cycles(usage, steps), input_tokens, output_tokens
    )
