"""The research-session flow on the same engine as `research deep` (`runtime.research_sessions`).

topic → questions → feedback → planning → executing → completed | error. Each step checks the
phase in the same transaction that moves it on, and announces itself with a stored event, so
the stream can be resumed with Last-Event-ID and a restart finds every event. `execute` runs
the plan's tasks (retrieval + the engine's summary per task, checkpointed one by one) and the
engine's synthesis; a daemon killed meanwhile resumes the remaining tasks when it starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localresearch.access.roles import Principal
from localresearch.errors import InvalidRequest, LocalResearchError, NotFound
from localresearch.research.report import partial_report
from localresearch.research.retrieval import Retriever
from localresearch.research.types import DimensionResult, Source, StepUsage
from localresearch.research_sessions import phases
from localresearch.research_sessions.engines import engine_for, write_report, writer_for
from localresearch.research_sessions.fanout import Fanout, Sink
from localresearch.research_sessions.planner import builtin_plan, plan_markdown, read_feedback
from localresearch.research_sessions.questions import builtin_questions, numbered
from localresearch.research_sessions.settings import SessionSettings, check_provider
from localresearch.research_sessions.store import (
    Change,
    SessionRow,
    SessionStore,
    StoredEvent,
    Task,
)

if TYPE_CHECKING:
    from localresearch.config import Config
    from localresearch.memory.types import MemorySearcher
    from localresearch.research.engine import Engine
    from localresearch.research.manager import JobManager
    from localresearch.research_sessions.model import ModelWriter
    from localresearch.store import Database

log = logging.getLogger(__name__)

MAX_TOPIC_CHARS = 4000
MAX_TEXT_CHARS = 20_000  # feedback and refinements
MAX_TASKS = 12
SWEEP_SECONDS = 60.0
TERMINAL_EVENTS = frozenset({"final-report", "error"})


class SessionService:
    """Sessions of the research-sessions API; a Service of the runtime."""

    def __init__(
        self,
        config: Config,
        db: Database,
        memory: MemorySearcher | None,
        jobs: JobManager | None = None,
        *,
        retriever: Retriever | None = None,
    ) -> None:
        self.config = config
        self.store = SessionStore(db)
        self.memory = memory
        self.jobs = jobs
        self._retriever = retriever
        self.ttl = float(config.research.session_ttl)
        self.fanout = Fanout()
        self._running: dict[str, asyncio.Task[SessionRow]] = {}
        self._slots = asyncio.Semaphore(max(1, config.research.max_concurrent_jobs))
        self._sweeper: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume what a previous daemon was executing; purge expired sessions on a timer."""
        for row in await self.store.executing():
            log.info("resuming research session %s", row.id)
            self._launch(row)
        self._sweeper = asyncio.create_task(self._sweep(), name="research-sessions:sweep")

    async def stop(self) -> None:
        """Stop where things stand: executing sessions resume on the next start."""
        tasks = [t for t in [self._sweeper, *self._running.values()] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.fanout.close_all()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            with contextlib.suppress(Exception):
                await self.purge_expired()

    async def purge_expired(self) -> list[str]:
        purged = await self.store.purge_expired(set(self._running))
        for session_id in purged:
            self.fanout.close(session_id)
        return purged

    # -- access ----------------------------------------------------------------------------

    async def get(self, session_id: str, who: Principal) -> SessionRow:
        """The session if it exists, has not expired, and `who` may see it."""
        try:
            row = await self.store.get(session_id)
        except NotFound:
            raise NotFound(f"Session {session_id!r} not found", code="not_found") from None
        if row.expires_at <= time.time() and row.id not in self._running:
            await self.store.delete(row.id)
            self.fanout.close(row.id)
            raise NotFound(f"Session {session_id!r} not found (it expired)")
        if not who.owns(row.owner):
            raise LocalResearchError(
                f"Session {session_id!r} belongs to another key", code="forbidden"
            )
        return row

    async def create(self, who: Principal, settings: SessionSettings) -> SessionRow:
        limit = self.config.research.sessions_per_key
        if limit > 0 and await self.store.count_live(who.id) >= limit:
            raise LocalResearchError(
                f"This key already has {limit} live sessions (research.sessions_per_key); "
                "delete some or let them expire",
                code="rate_limited",
            )
        return await self.store.create(who.id, settings.to_dict(), self.ttl)

    async def list_sessions(self, who: Principal) -> list[SessionRow]:
        return await self.store.list_live(None if "admin" in who.permissions else who.id)

    async def delete(self, session_id: str, who: Principal) -> None:
        row = await self.get(session_id, who)
        task = self._running.pop(row.id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.store.delete(row.id)
        self.fanout.close(row.id)

    async def extend(self, session_id: str, who: Principal) -> SessionRow:
        """Push the expiry by the session lifetime (at most a day ahead)."""
        row = await self.get(session_id, who)
        now = time.time()
        expires = min(max(row.expires_at, now) + self.ttl, now + max(86_400.0, self.ttl))
        updated, _ = await self.store.update(row.id, Change({"expires_at": expires}))
        return updated

    # -- events ----------------------------------------------------------------------------

    async def _apply(
        self, session_id: str, change: Change, expect: tuple[str, ...] | None = None
    ) -> SessionRow:
        row, event = await self.store.update(session_id, change, expect=expect)
        if event is not None:
            self.fanout.publish(session_id, event)
        return row

    def attach(self, session_id: str, sink: Sink) -> Callable[[], None]:
        """Call `sink` with each new event of the session as it is stored (None: gone)."""
        return self.fanout.attach(session_id, sink)

    def subscriber_count(self, session_id: str) -> int:
        return self.fanout.count(session_id)

    async def subscribe(self, session_id: str, after: int = 0) -> AsyncIterator[StoredEvent]:
        """Stored events after `after`, then live ones; ends when the session is deleted."""
        queue: asyncio.Queue[StoredEvent | None] = asyncio.Queue()
        detach = self.attach(session_id, queue.put_nowait)
        try:
            last = after
            for event in await self.store.events(session_id, after):
                last = event.id
                yield event
            while True:
                item = await queue.get()
                if item is None:
                    return
                if item.id > last:
                    last = item.id
                    yield item
        finally:
            detach()

    @staticmethod
    def _progress(phase: str, progress: int, message: str) -> tuple[str, dict[str, Any]]:
        return ("progress", {"phase": phase, "progress": progress, "message": message})

    # -- the flow --------------------------------------------------------------------------

    def _settings(self, row: SessionRow) -> SessionSettings:
        return SessionSettings.from_dict(row.settings)

    def retriever(self, settings: SessionSettings) -> Retriever:
        if self._retriever is not None:
            return self._retriever
        web = None
        if settings.search_provider != "none" and self.jobs is not None:
            web = self.jobs.web
        workspace = getattr(self.memory, "workspace", None)
        return Retriever(
            self.memory, web, workspace=workspace if isinstance(workspace, Path) else None
        )

    def _writer(self, settings: SessionSettings) -> ModelWriter:
        return writer_for(self.config, settings, self.memory)

    def _engine(self, settings: SessionSettings, model: str) -> Engine:
        return engine_for(self.config, settings, model, self.memory)

    async def questions(self, session_id: str, who: Principal, topic: str) -> SessionRow:
        topic = _text(topic, "topic", MAX_TOPIC_CHARS)
        row = await self.get(session_id, who)
        _expect(row, phases.ALLOWED["questions"])
        self._check_provider(row)
        written = await self._write_questions(row, topic, "")
        return await self._apply(
            row.id,
            Change(
                {"topic": topic, "questions": written, "phase": "questions"},
                self._progress("questions", 0, "Clarifying questions ready"),
            ),
            expect=phases.ALLOWED["questions"],
        )

    async def _write_questions(self, row: SessionRow, topic: str, guidance: str) -> str:
        settings = self._settings(row)
        query = f"{topic} {guidance}".strip()
        passages = await self.retriever(settings).search(query, 20)
        written: list[str] | None = None
        if not settings.builtin:
            writer = self._writer(settings)
            try:
                written = await writer.questions(query, passages, settings.language)
            finally:
                await writer.provider.close()
        if written is None:
            web = settings.search_provider != "none"
            # A refinement's words count as the user's own: the questions name them and ask
            # about what else the notes hold.
            written = await asyncio.to_thread(builtin_questions, query, passages, web=web)
        return numbered(written)

    async def feedback(self, session_id: str, who: Principal, feedback: str) -> SessionRow:
        feedback = _text(feedback, "feedback", MAX_TEXT_CHARS, allow_empty=True)
        row = await self.get(session_id, who)
        _expect(row, phases.ALLOWED["feedback"])
        return await self._apply(
            row.id,
            Change(
                {"feedback": feedback, "phase": "feedback"},
                self._progress("feedback", 0, "Feedback received"),
            ),
            expect=phases.ALLOWED["feedback"],
        )

    async def plan(self, session_id: str, who: Principal) -> SessionRow:
        row = await self.get(session_id, who)
        _expect(row, phases.ALLOWED["plan"])
        self._check_provider(row)
        tasks, markdown = await self._write_plan(row, row.feedback)
        return await self._apply(
            row.id,
            Change(
                {"report_plan": markdown, "tasks": [t.to_dict() for t in tasks],
                 "phase": "planning", "progress": 0},
                self._progress("planning", 0, f"Research plan ready: {len(tasks)} tasks"),
            ),
            expect=phases.ALLOWED["plan"],
        )  # fmt: skip

    async def edit_plan(self, session_id: str, who: Principal, tasks: list[Task]) -> SessionRow:
        """The user's own tasks in place of the written ones (a page's plan editor)."""
        if not 1 <= len(tasks) <= MAX_TASKS:
            raise InvalidRequest(f"a plan needs 1 to {MAX_TASKS} tasks (got {len(tasks)})")
        kept = [
            Task(query=_text(t.query, "task query", 500), focus=_text(t.focus, "task focus", 200))
            for t in tasks
        ]
        row = await self.get(session_id, who)
        _expect(row, ("planning",))
        markdown = plan_markdown(
            row.topic, row.feedback, kept, read_feedback(row.topic, row.feedback)
        )
        return await self._apply(
            row.id,
            Change({"report_plan": markdown, "tasks": [t.to_dict() for t in kept]},
                   self._progress("planning", 0, f"Plan edited: {len(kept)} tasks")),
            expect=("planning",),
        )  # fmt: skip

    async def _write_plan(self, row: SessionRow, feedback: str) -> tuple[list[Task], str]:
        settings = self._settings(row)
        count = min(6, max(3, self.config.research.dimensions))
        passages = await self.retriever(settings).search(f"{row.topic} {feedback}".strip(), 30)
        if not settings.builtin:
            writer = self._writer(settings)
            try:
                planned = await writer.plan(
                    row.topic, row.questions, feedback, passages, 6, settings.language
                )
            finally:
                await writer.provider.close()
            if planned is not None:
                return planned
        planned_here: tuple[list[Task], str] = await asyncio.to_thread(
            builtin_plan, row.topic, feedback, passages, count
        )
        return planned_here

    async def execute(self, session_id: str, who: Principal) -> SessionRow:
        """Run the plan; returns when the report is written (the work goes on if the caller
        leaves)."""
        row = await self.get(session_id, who)
        if row.id not in self._running:
            _expect(row, phases.ALLOWED["execute"])
            self._check_provider(row)
            row = await self._apply(
                row.id,
                Change({"phase": "executing", "progress": 0, "error": None},
                       self._progress("executing", 0, f"Executing {len(row.tasks)} tasks")),
                expect=phases.ALLOWED["execute"],
            )  # fmt: skip
            self._launch(row)
        return await asyncio.shield(self._running[row.id])

    def _launch(self, row: SessionRow, first_new: int | None = None) -> None:
        task = asyncio.create_task(self._run(row, first_new), name=f"research-session:{row.id}")
        self._running[row.id] = task
        task.add_done_callback(lambda _t: self._running.pop(row.id, None))

    async def _run(self, row: SessionRow, first_new: int | None) -> SessionRow:
        async with self._slots:
            settings = self._settings(row)
            done = {idx: DimensionResult.from_dict(r["result"])
                    for idx, _q, r in await self.store.results(row.id)}  # fmt: skip
            total = len(row.tasks) + 1  # the tasks, then the synthesis
            try:
                engine = self._engine(settings, settings.task_model)
                try:
                    for idx, task in enumerate(row.tasks):
                        if idx in done:
                            continue
                        done[idx] = await self._run_task(row, settings, engine, idx, task)
                        await self._apply(
                            row.id,
                            Change({"progress": _percent(len(done), total)},
                                   self._progress("executing", _percent(len(done), total),
                                                  f"Task {idx + 1} of {len(row.tasks)} done:"
                                                  f" {task.focus}")),
                        )  # fmt: skip
                finally:
                    await engine.close()
                results = [done[i] for i in sorted(done)]
                report = await self._synthesise(row, settings, results)
            except asyncio.CancelledError:
                raise  # daemon stopping: the session stays executing and resumes on start
            except Exception as exc:
                return await self._fail(row, exc, done)
            await self.store.save_report(row.id, report, False)
            return await self._apply(
                row.id,
                Change({"final_report": report, "phase": "completed", "progress": 100},
                       ("final-report", {"finalReport": report, "phase": "completed",
                                         **_language(settings)})),
            )  # fmt: skip

    async def _run_task(
        self, row: SessionRow, settings: SessionSettings, engine: Engine, idx: int, task: Task
    ) -> DimensionResult:
        sources = await self.retriever(settings).search(task.query, settings.max_results)
        usage = StepUsage()
        result = await engine.summarise(row.topic, task.focus, idx, sources, usage)
        await self.store.save_result(row.id, idx, task.query, {"result": result.to_dict()})
        return result

    async def _synthesise(
        self, row: SessionRow, settings: SessionSettings, results: list[DimensionResult]
    ) -> str:
        await self._apply(
            row.id,
            Change({}, self._progress("executing", _percent(len(results), len(results) + 1),
                                      "Writing the report")),
        )  # fmt: skip
        engine = self._engine(settings, settings.thinking_model)
        try:
            return await write_report(engine, row.topic, results, settings.enable_references)
        finally:
            await engine.close()

    async def _fail(
        self, row: SessionRow, exc: Exception, done: dict[int, DimensionResult]
    ) -> SessionRow:
        if isinstance(exc, LocalResearchError):
            message = exc.message
        else:
            log.exception("research session %s failed", row.id)
            message = f"Research execution failed: {type(exc).__name__}"
        partial, _sources = partial_report(row.topic, [done[i] for i in sorted(done)])
        await self.store.save_report(row.id, partial, True)
        return await self._apply(
            row.id,
            Change({"phase": "error", "error": message, "final_report": partial},
                   ("error", {"error": message, "phase": "error"})),
        )  # fmt: skip

    async def results(
        self, session_id: str, who: Principal
    ) -> tuple[SessionRow, list[tuple[str, list[Source]]]]:
        row = await self.get(session_id, who)
        found = []
        for _idx, query, saved in await self.store.results(row.id):
            found.append((query, DimensionResult.from_dict(saved["result"]).sources))
        return row, found

    async def refine(
        self, session_id: str, who: Principal, phase: str | None, refinement: str
    ) -> SessionRow:
        """Redo a stage with the refinement taken into account, from any stage before the
        research runs (the spec: "at any stage (questions, feedback, or planning)"); the session
        is then in the refined stage, and the steps after it are taken again. On a completed
        session, research the refinement and revise the report."""
        refinement = _text(refinement, "refinement", MAX_TEXT_CHARS)
        row = await self.get(session_id, who)
        target = phase or ("questions" if row.phase == "topic" else row.phase)
        if target == "completed":
            return await self._follow_up(row, refinement)
        allowed = phases.REFINE_FROM.get(target)
        if allowed is None:
            raise InvalidRequest(
                "refine's phase must be questions, feedback, planning or completed "
                f"(got {target!r})"
            )
        _expect(row, allowed)
        if target == "feedback":
            merged = f"{row.feedback}\n{refinement}".strip()
            return await self._apply(
                row.id,
                Change({"feedback": merged, "phase": "feedback"},
                       self._progress("feedback", 0, "Feedback refined")),
                expect=allowed,
            )  # fmt: skip
        self._check_provider(row)
        if target == "questions":
            # A session without a topic yet: the refinement says what to ask about.
            topic = row.topic or _text(refinement, "refinement", MAX_TOPIC_CHARS)
            written = await self._write_questions(row, topic, refinement if row.topic else "")
            return await self._apply(
                row.id,
                Change({"topic": topic, "questions": written, "phase": "questions"},
                       self._progress("questions", 0, "Clarifying questions refined")),
                expect=allowed,
            )  # fmt: skip
        merged = f"{row.feedback}\n{refinement}".strip()
        tasks, markdown = await self._write_plan(row, merged)
        return await self._apply(
            row.id,
            Change({"feedback": merged, "report_plan": markdown,
                    "tasks": [t.to_dict() for t in tasks], "phase": "planning", "progress": 0},
                   self._progress("planning", 0, f"Plan refined: {len(tasks)} tasks")),
            expect=allowed,
        )  # fmt: skip

    def _check_provider(self, row: SessionRow) -> None:
        """The session's model provider is still one this daemon may use (the configuration
        may have changed since it was created): refused before anything is sent."""
        check_provider(self.config, self._settings(row).provider)

    async def _follow_up(self, row: SessionRow, refinement: str) -> SessionRow:
        _expect(row, ("completed",))
        self._check_provider(row)
        planned, _markdown = await self._write_plan(row, refinement)
        known = {t.focus.lower() for t in row.tasks}
        new = [t for t in planned if t.focus.lower() not in known][:3] or planned[:1]
        tasks = [*row.tasks, *new]
        addition = "\n".join(f"- {t.focus} (search: {t.query})" for t in new)
        plan = f"{row.report_plan.rstrip()}\n\n## Follow-up: {refinement[:200]}\n\n{addition}\n"
        updated = await self._apply(
            row.id,
            Change({"tasks": [t.to_dict() for t in tasks], "report_plan": plan,
                    "phase": "executing", "progress": _percent(len(row.tasks), len(tasks) + 1)},
                   self._progress("executing", _percent(len(row.tasks), len(tasks) + 1),
                                  f"Follow-up research: {len(new)} new tasks")),
            expect=("completed",),
        )  # fmt: skip
        self._launch(updated)
        return await asyncio.shield(self._running[updated.id])

    async def run_whole(
        self, session_id: str, who: Principal, topic: str, feedback: str = ""
    ) -> SessionRow:
        """Every step in a row (the legacy one-call flow and the fixed test flow); a step that
        fails ends the session in `error` with an error event, so its stream ends too."""
        try:
            await self.questions(session_id, who, topic)
            await self.feedback(session_id, who, feedback)
            await self.plan(session_id, who)
        except Exception as exc:
            message = exc.message if isinstance(exc, LocalResearchError) else type(exc).__name__
            await self._apply(
                session_id,
                Change({"phase": "error", "error": message},
                       ("error", {"error": message, "phase": "error"})),
            )  # fmt: skip
            raise
        return await self.execute(session_id, who)

    async def reports(self, session_id: str, who: Principal) -> list[tuple[int, str, bool]]:
        row = await self.get(session_id, who)
        return await self.store.reports(row.id)


def _language(settings: SessionSettings) -> dict[str, str]:
    """The report's language for the final-report event, and why, when it is not the one asked."""
    note = settings.language_note
    return {"reportLanguage": settings.report_language, **({"languageNote": note} if note else {})}


def _percent(done: int, total: int) -> int:
    return int(100 * done / total) if total else 100


def _expect(row: SessionRow, allowed: tuple[str, ...]) -> None:
    if row.phase not in allowed:
        raise phases.PhaseError(row.phase, allowed)


def _text(value: str, name: str, limit: int, *, allow_empty: bool = False) -> str:
    value = value.strip()
    if not value and not allow_empty:
        raise InvalidRequest(f"{name} must not be empty")
    if len(value) > limit:
        raise InvalidRequest(f"{name} is too long ({len(value)} characters; limit: {limit})")
    if "\x00" in value:
        raise InvalidRequest(f"{name} must not contain NUL characters")
    return value
