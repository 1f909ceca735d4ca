"""One job's control flow: scope → research dimensions → evaluate gaps → synthesise, resumable.

Each step is checkpointed when it completes; its events are persisted as they happen with a
per-step ordinal. A resumed job skips completed steps and, inside the step it re-runs, does not
re-emit the events that step already emitted, so every event exists exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from localresearch.citations import AlignedSentence
from localresearch.config.schema import ResearchConfig
from localresearch.errors import LocalResearchError
from localresearch.events import Event
from localresearch.redaction import redact
from localresearch.research.citations import (
    check_model_paragraph,
    cited_numbers,
    drop_unsupported,
    number_sources,
    quoted_evidence,
    sources_section,
    strip_invalid,
    unwrap_prose,
)
from localresearch.research.engine import Engine
from localresearch.research.fallback import checked_findings
from localresearch.research.hub import EventHub
from localresearch.research.llm import SYNTHESIS
from localresearch.research.report import (
    extractive_paragraphs,
    partial_report,
    report_numbering,
)
from localresearch.research.retrieval import Retriever
from localresearch.research.store import Ending, JobRow, JobStore, Progress
from localresearch.research.types import DimensionResult, Evaluation, Source, StepUsage

T = TypeVar("T")
log = logging.getLogger(__name__)


class Pipeline:
    """Runs (or resumes) one job to a terminal status; never raises for pipeline errors.

    Events emitted inside a step's work are keyed by that step; the events around it (started,
    complete) by `<step>/edge`, so a checkpointed step that is not re-run shifts no ordinal.
    """

    def __init__(
        self,
        job: JobRow,
        store: JobStore,
        hub: EventHub,
        engine: Engine,
        retriever: Retriever,
        config: ResearchConfig,
        cancel: asyncio.Event,
    ) -> None:
        self.job = job
        self.store = store
        self.hub = hub
        self.engine = engine
        self.retriever = retriever
        self.config = config
        self.cancel = cancel
        self._lock = asyncio.Lock()
        self._seq = job.last_event_id
        self._emitted: dict[str, int] = {}
        self._ordinals: dict[str, int] = {}
        self._progress = Progress(
            phase=job.phase,
            dimensions_total=job.dimensions_total,
            dimensions_complete=job.dimensions_complete,
            source_count=job.source_count,
        )
        self._steps: dict[str, tuple[Any, dict[str, int]]] = {}
        self._shown: set[str] = set()  # key findings already shown in dimension_complete events
        self._counted: set[str] = set()  # source ids counted in the snapshot's sourceCount

    # -- events ----------------------------------------------------------------------------

    async def emit(
        self,
        step: str,
        type: str,
        data: Any,
        final_status: tuple[str, str | None] | None = None,
        *,
        phase: str | None = None,
        dimensions_total: int | None = None,
        add_sources: int = 0,
        add_complete: int = 0,
        source_count: int | None = None,
    ) -> None:
        """Persist then publish one event, unless a previous run of this step already did.

        The snapshot counters change under the same lock that orders the events, so concurrent
        dimensions never lose an increment.
        """
        async with self._lock:
            ordinal = self._ordinals.get(step, 0)
            self._ordinals[step] = ordinal + 1
            if ordinal < self._emitted.get(step, 0):
                return
            old = self._progress
            new_progress = Progress(
                phase=phase or old.phase,
                dimensions_total=old.dimensions_total
                if dimensions_total is None
                else dimensions_total,
                dimensions_complete=old.dimensions_complete + add_complete,
                source_count=old.source_count + add_sources
                if source_count is None
                else source_count,
            )
            event = Event(type=type, data=data, id=self._seq + 1)
            try:
                await self.store.append_event(
                    self.job.id, step, ordinal, event, new_progress, final_status
                )
            except BaseException:
                self._ordinals[step] = ordinal  # not emitted: the ordinal is still free
                raise
            self._seq += 1
            self._progress = new_progress
            self.hub.publish(self.job.id, event)

    async def _abortable(self, work: Awaitable[T]) -> T:
        """Await a model call or search, abandoning it (and so closing its HTTP request) the
        moment the job is cancelled: a cancel never waits for a slow or stalled model."""
        if self.cancel.is_set():
            raise _Cancelled
        task = asyncio.ensure_future(work)
        waiter = asyncio.ensure_future(self.cancel.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            waiter.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise _Cancelled

    async def _step(
        self, name: str, run: Callable[[StepUsage], Awaitable[tuple[Any, list[Source]]]]
    ) -> Any:
        """Return a completed step's checkpoint, or run it and record the checkpoint."""
        if name in self._steps:
            return self._steps[name][0]
        usage = StepUsage()
        result, sources = await run(usage)
        await self.store.complete_step(self.job.id, name, result, usage.to_dict(), sources)
        self._steps[name] = (result, usage.to_dict())
        return result

    # -- the job ---------------------------------------------------------------------------

    async def run(self) -> str:
        """Drive the job to complete, cancelled or error; return that status."""
        job_id = self.job.id
        self._steps = await self.store.steps(job_id)
        self._emitted = await self.store.step_event_counts(job_id)
        if self._emitted:  # resumed: the sources counted before the restart stay counted
            self._counted = {
                str(e.data.get("sourceId"))
                for e in await self.store.events(job_id)
                if e.type == "dimension_source" and isinstance(e.data, dict)
            }
        try:
            await self.store.set_status(job_id, "running")
            return await self._run()
        except asyncio.CancelledError:
            raise  # the daemon is stopping: the job stays `running` and resumes on next start
        except Exception as exc:
            message, code = failure(exc, job_id)
            await self._end_error(message, code)
            return "error"

    async def _end_error(self, message: str, code: str) -> None:
        """End the job `error`: its `error` and `done` events with the status in one write, or,
        when the storage refuses (a full disk, the likely cause of the failure), in memory
        until it can be written (research/store.py, `JobStore.end`). Never raises."""
        job_id = self.job.id
        async with self._lock:
            ordinal = self._ordinals.get("end", 0)
            ending = Ending.after(
                job_id,
                replace(self._progress, phase="done"),
                "error",
                message,
                code,
                ordinal=ordinal,
                seq=self._seq,
            )
            self._ordinals["end"] = ordinal + len(ending.events)
            self._seq += len(ending.events)
            self._progress = ending.progress
            await self.store.end(job_id, ending)
            for _step, _ordinal, event in ending.events:
                self.hub.publish(job_id, event)

    async def _run(self) -> str:
        query = self.job.query
        options = self.job.options
        if self.cancel.is_set() and "scope" not in self._steps:
            return await self._finish_cancelled([])  # cancelled while queued: nothing to keep
        await self.emit("scope/edge", "scope_started", {"query": query}, phase="scope")

        async def scope(usage: StepUsage) -> tuple[Any, list[Source]]:
            passages = await self._abortable(self.retriever.search(query, 40))
            dims = await self._abortable(
                self.engine.scope(query, passages, options.dimensions, usage)
            )
            return {"dimensions": dims, "fallbacks": usage.notes}, []

        try:
            scoped = await self._step("scope", scope)
        except _Cancelled:
            return await self._finish_cancelled([])
        dimensions: list[str] = scoped["dimensions"]
        await self.emit(
            "scope/edge",
            "scope_complete",
            {"dimensions": dimensions},
            phase="research",
            dimensions_total=len(dimensions),
        )
        await self._fallbacks("scope/edge", scoped)
        results: list[DimensionResult] = []
        pending = list(enumerate(dimensions))
        iteration = 0
        while True:
            taken = [r.key_finding for r in results if r.key_finding]
            results.extend(await self._research_round(pending, taken))
            if self.cancel.is_set() or iteration >= options.rounds:
                break
            iteration += 1
            try:
                evaluation = await self._evaluate(results, iteration)
            except _Cancelled:
                break
            if self.cancel.is_set() or not evaluation.new_dimensions:
                break
            start = len(results)
            pending = [(start + i, d) for i, d in enumerate(evaluation.new_dimensions)]
        if self.cancel.is_set():
            return await self._finish_cancelled(results)
        return await self._synthesise(results)

    async def _research_round(
        self, pending: list[tuple[int, str]], taken: list[str]
    ) -> list[DimensionResult]:
        """Research dimensions concurrently; once cancelled, no new dimension starts."""
        limit = asyncio.Semaphore(max(1, self.config.dimension_concurrency))

        async def one(index: int, dimension: str) -> DimensionResult | None:
            async with limit:
                if self.cancel.is_set() and f"dimension:{index}" not in self._steps:
                    return None
                try:
                    return await self._research_dimension(index, dimension, taken)
                except _Cancelled:  # cancelled during its model call: not finished, not kept
                    return None

        # A failing dimension lets the others finish (their events precede the error's).
        done = await asyncio.gather(*(one(i, d) for i, d in pending), return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
        return sorted((r for r in done if isinstance(r, DimensionResult)), key=lambda r: r.index)

    async def _research_dimension(
        self, index: int, dimension: str, taken: list[str]
    ) -> DimensionResult:
        step = f"dimension:{index}"
        edge = f"{step}/edge"
        await self.emit(edge, "dimension_started", {"dimension": dimension, "index": index})
        query = self.job.query
        keep = self.job.options.sources_per_dimension

        async def research(usage: StepUsage) -> tuple[Any, list[Source]]:
            found = await self._abortable(self.retriever.search(f"{dimension} {query}", keep * 2))
            chosen = [replace(s, dimension=dimension) for s in found[:keep]]
            for source in chosen:
                # The snapshot counts distinct sources (the report's number); each dimension
                # still shows every source it uses.
                new = source.id not in self._counted
                self._counted.add(source.id)
                await self.emit(
                    step,
                    "dimension_source",
                    {
                        "title": source.title,
                        "url": source.url or source.location,
                        "snippet": _snippet(source.passage),
                        "dimension": dimension,
                        "sourceId": source.id,
                        "location": source.location,
                    },
                    add_sources=int(new),
                )
            result = await self._abortable(
                self.engine.summarise(query, dimension, index, chosen, usage)
            )
            result = _own_key_finding(result, taken)
            return {**result.to_dict(), "fallbacks": usage.notes}, chosen

        saved = await self._step(step, research)
        result = DimensionResult.from_dict(saved)
        # Shown live, a finding another dimension of this run already showed is not repeated
        # (the report makes the same choice, deterministically, in dimension order).
        shown = _own_key_finding(result, sorted(self._shown)).key_finding
        shown = "" if shown in self._shown else shown  # nothing of its own: show none
        self._shown.add(shown)
        await self.emit(
            edge,
            "dimension_complete",
            {
                "dimension": dimension,
                "summary": result.summary,
                "keyFinding": shown,
                "sourceCount": len(result.sources),
                "index": index,
            },
            add_complete=1,
        )
        await self._fallbacks(edge, saved)
        return result

    async def _evaluate(self, results: list[DimensionResult], iteration: int) -> Evaluation:
        step = f"evaluate:{iteration}"
        edge = f"{step}/edge"
        await self.emit(edge, "evaluate_started", {"iteration": iteration}, phase="evaluate")

        async def evaluate(usage: StepUsage) -> tuple[Any, list[Source]]:
            passages = await self._abortable(self.retriever.search(self.job.query, 40))
            evaluation = await self._abortable(
                self.engine.evaluate(self.job.query, results, passages, iteration, usage)
            )
            return {
                "gaps": evaluation.gaps,
                "newDimensions": evaluation.new_dimensions,
                "fallbacks": usage.notes,
            }, []

        saved = await self._step(step, evaluate)
        evaluation = Evaluation(gaps=saved["gaps"], new_dimensions=saved["newDimensions"])
        await self.emit(
            edge,
            "evaluate_complete",
            {
                "gaps": evaluation.gaps,
                "hasGaps": evaluation.has_gaps,
                "newDimensions": evaluation.new_dimensions,
            },
            phase="research",
            dimensions_total=len(results) + len(evaluation.new_dimensions),
        )
        await self._fallbacks(edge, saved)
        return evaluation

    async def _synthesise(self, results: list[DimensionResult]) -> str:
        extractive = bool(getattr(self.engine, "extractive", False))
        # The builtin report lists the sources it cites; a model sees every source numbered.
        numbering, ordered = (
            report_numbering(self.job.query, results) if extractive else number_sources(results)
        )
        await self.emit("synthesis/edge", "synthesis_started", {}, phase="synthesis")
        body: list[str] = []
        said = [0]  # statements a source supports, in a model's report
        checked_sentences: list[AlignedSentence] = []  # the model's, for the evidence rule

        def verified(text: str) -> str:
            if extractive:
                return drop_unsupported(strip_invalid(text, len(ordered)), ordered)
            # A model's paragraph: no JSON, no echoed prompt, every [n] checked and corrected,
            # a sentence no source supports flagged.
            checked, supported, _unsupported = check_model_paragraph(
                text, ordered, SYNTHESIS, checked_sentences
            )
            said[0] += supported
            return checked

        async def synthesise(usage: StepUsage) -> tuple[Any, list[Source]]:
            nonlocal ordered  # a report the builtin engine writes lists the sources it cites
            buffer = ""
            stream = self.engine.synthesise(self.job.query, results, numbering, usage)
            chunks = aiter(stream)
            while True:
                try:
                    chunk = await self._abortable(anext(chunks))
                except StopAsyncIteration:
                    break
                buffer += chunk
                # Stream whole paragraphs only, so each is verified before anyone sees it.
                cut = buffer.rfind("\n\n")
                if cut >= 0:
                    if self.cancel.is_set():  # cancelled mid-report: stop at this paragraph
                        raise _Cancelled
                    paragraph, buffer = buffer[: cut + 2], buffer[cut + 2 :]
                    if not extractive:
                        paragraph = unwrap_prose(paragraph)
                    if not body and not extractive:
                        paragraph = _titled(paragraph, self.job.query)
                    await self._delta(body, verified(paragraph))
            if buffer:
                if not extractive:
                    buffer = unwrap_prose(buffer)
                if not body and not extractive:
                    buffer = _titled(buffer, self.job.query)
                await self._delta(body, verified(buffer).rstrip("\n") + "\n\n")
            if not extractive and not said[0] and results:
                # Nothing the model wrote is backed by a source (JSON, echoes, empty): the
                # builtin engine writes the report from the findings instead.
                ordered = await self._fallback_report(body, results, ordered, usage)
            elif not extractive and results:
                # Most of it unsupported, or the strongest source uncited: what the sources
                # say, quoted, as an answer shows it.
                await self._delta(body, quoted_evidence(self.job.query, checked_sentences, ordered))
            await self._delta(body, sources_section(ordered))
            markdown = "".join(body)
            return {"report": markdown, "sources": [s.to_dict() for s in ordered]}, []

        try:
            saved = await self._step("synthesis", synthesise)
        except _Cancelled:
            return await self._finish_cancelled(results, written=body, ordered=ordered)
        await self.store.save_report(self.job.id, saved["report"], saved["sources"], False)
        await self.emit(
            "synthesis/edge",
            "synthesis_complete",
            {"sourceCount": len(saved["sources"])},
            source_count=len(saved["sources"]),  # one source count: the report's
        )
        await self.emit(
            "end",
            "done",
            {"researchId": self.job.id, "status": "complete"},
            final_status=("complete", None),
            phase="done",
        )
        return "complete"

    async def _fallbacks(self, edge: str, saved: dict[str, Any]) -> None:
        """An event for each part of a step the builtin engine did in the model's place (kept
        in the step's checkpoint, so a resumed job tells the same)."""
        for note in saved.get("fallbacks") or []:
            step = edge.split("/")[0].split(":")[0]
            await self.emit(edge, "fallback", {"step": step, **note})

    async def _fallback_report(
        self,
        body: list[str],
        results: list[DimensionResult],
        ordered: list[Source],
        usage: StepUsage,
    ) -> list[Source]:
        """The builtin engine's report body after the model's text, from the model's findings
        checked against the sources (research/fallback.py); returns the sources it lists: those
        the report cites, unless the model's text already streamed cites by the numbers every
        source had."""
        reason = "no statement of the model's report was backed by a source"
        usage.fallbacks += 1
        log.warning("research %s: %s; the builtin engine writes the report", self.job.id, reason)
        await self.emit(
            "synthesis", "fallback", {"step": "synthesis", "part": "report", "reason": reason}
        )
        written = "".join(body)
        query = self.job.query
        checked = await asyncio.to_thread(checked_findings, query, results, ordered)
        if cited_numbers(written):
            numbering = {source.id: n for n, source in enumerate(ordered, start=1)}
        else:
            numbering, ordered = report_numbering(query, checked)
        titled = any(line.startswith("# ") for line in written.splitlines())
        for paragraph in extractive_paragraphs(query, checked, numbering):
            if titled and paragraph.startswith("# "):
                continue
            await self._delta(body, paragraph)
        return ordered

    async def _delta(self, body: list[str], text: str) -> None:
        if text:
            body.append(text)
            await self.emit("synthesis", "synthesis_delta", {"text": text})

    async def _finish_cancelled(
        self,
        results: list[DimensionResult],
        *,
        written: list[str] | None = None,
        ordered: list[Source] | None = None,
    ) -> str:
        """Keep what was found: the report as far as it was written when cancelled during the
        synthesis, else a partial report from the completed dimensions (no model call)."""
        lines = "".join(written or []).splitlines()
        prose = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if prose and written and ordered is not None:
            note = "\n> Partial report: the job was cancelled while the report was being written.\n"
            markdown = "".join(written).rstrip("\n") + "\n" + note + sources_section(ordered)
            sources = [s.to_dict() for s in ordered]
        else:
            markdown, sources = partial_report(self.job.query, results)
        await self.store.save_report(self.job.id, markdown, sources, True)
        await self.emit(
            "end",
            "done",
            {"researchId": self.job.id, "status": "cancelled"},
            final_status=("cancelled", None),
            phase="done",
        )
        return "cancelled"


def failure(exc: Exception, job_id: str) -> tuple[str, str]:
    """The message and code a job that failed with `exc` ends with (an unexpected error is
    logged with its traceback, and its text redacted)."""
    if isinstance(exc, LocalResearchError):
        return exc.message, exc.code
    log.error("research job %s failed", job_id, exc_info=exc)
    return redact(f"Internal error: {type(exc).__name__}: {exc}"), "internal_error"


def _own_key_finding(result: DimensionResult, taken: list[str]) -> DimensionResult:
    """A dimension of a later round does not repeat a key finding an earlier round gave: it
    surfaces its next point instead (decided inside the step, so a resumed job agrees)."""
    if result.key_finding not in taken:
        return result
    fresh = next((p.text for p in result.points if p.text not in taken), None)
    return replace(result, key_finding=fresh) if fresh else result


def _titled(first: str, query: str) -> str:
    """A model's report starts with a '# ' title; one that does not gets the question."""
    if first.lstrip().startswith("# "):
        return first
    return f"# {query.strip()}\n\n{first}"


class _Cancelled(Exception):
    """The job was cancelled: between two paragraphs of its report, or during a model call."""


def _snippet(passage: str, limit: int = 280) -> str:
    text = " ".join(passage.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
