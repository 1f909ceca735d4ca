"""The heartbeat scheduler: on a fixed grid, run the due tasks of HEARTBEAT.md and log results.

Slots sit on a grid anchored at the Unix epoch (every `interval`), so run time never shifts the
schedule. The next slot is persisted before a run starts and the in-flight run is marked, so a
restart runs a missed or interrupted heartbeat once and never twice. Which *tasks* are due lives
in HEARTBEAT.md itself (their `due` lines), so a skipped heartbeat never loses a task.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from localresearch.errors import Conflict, LocalResearchError
from localresearch.heartbeat import schedules
from localresearch.heartbeat.clock import Clock, SystemClock
from localresearch.heartbeat.digest import demote_headings, quote
from localresearch.heartbeat.file import HeartbeatFile
from localresearch.heartbeat.report import HeartbeatBrief, HeartbeatStatus, RunResult, TaskOutcome
from localresearch.heartbeat.runner import TaskResult, TaskRunner, export_command
from localresearch.heartbeat.schedule import format_duration
from localresearch.heartbeat.settings import HeartbeatSettings
from localresearch.heartbeat.state import State, StateStore, iso
from localresearch.heartbeat.tasks import ListedTask, Malformed, Task
from localresearch.store import Database
from localresearch.workspace import append_daily_log, ensure_workspace

__all__ = ["HeartbeatService", "HeartbeatSettings"]  # the settings moved to settings.py

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ATTEMPTS = 3  # a one-off task that fails this many times is moved to Completed as failed
MAX_TEXT = schedules.MAX_TEXT


class HeartbeatService:
    """Runs due tasks on schedule; also the one place that edits HEARTBEAT.md for the API."""

    def __init__(
        self,
        settings: HeartbeatSettings,
        workspace: Path,
        db: Database,
        runner: TaskRunner,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.workspace = workspace
        self.runner = runner
        self.clock: Clock = clock or SystemClock()
        self.file = HeartbeatFile(workspace / "HEARTBEAT.md", settings.tz)
        self.store = StateStore(db)
        self.state = State()
        self._lock = asyncio.Lock()
        self._loop_task: asyncio.Task[None] | None = None
        self._runs = 0
        self._ran = asyncio.Condition()
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._jobs_lock = asyncio.Lock()

    @property
    def tz(self) -> tzinfo:
        return self.settings.tz

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(ensure_workspace, self.workspace)
        self.state = await self.store.load()
        if self.settings.enabled:
            # The first slot the *current* config gives: a stored next_run later than it was
            # planned with another interval or active hours. A stored time in the past is kept,
            # so a heartbeat missed while the daemon was down still runs, once.
            first = self.following(self.clock.now())
            if self.state.next_run is None or self.state.next_run > first:
                self.state.next_run = first
                await self.store.save(self.state)
        for job_id, text in await self.store.jobs():
            self._watch(job_id, text)  # research started before a restart
        if self.settings.enabled:
            self._loop_task = asyncio.create_task(self._loop(), name="heartbeat")

    async def stop(self) -> None:
        task, self._loop_task = self._loop_task, None
        tasks = [*([task] if task is not None else []), *self._watchers.values()]
        for each in tasks:
            each.cancel()
        for each in tasks:
            try:
                await each
            except asyncio.CancelledError:
                pass

    # -- the schedule ----------------------------------------------------------------------

    def following(self, after: datetime) -> datetime:
        """The first slot strictly after `after` that is inside the active hours."""
        step = self.settings.interval
        periods = (after.astimezone(UTC) - EPOCH) // step + 1
        slot = EPOCH + periods * step
        active = self.settings.active
        if active.contains(slot, self.tz) or active.start is None:
            return slot
        local = after.astimezone(self.tz)
        opening = _wall(local.date(), active.start, self.tz)
        if opening <= after:
            opening = _wall(local.date() + timedelta(days=1), active.start, self.tz)
        return min(opening, self._first_active_slot(slot))

    def _first_active_slot(self, slot: datetime) -> datetime:
        for _ in range(10_000):
            if self.settings.active.contains(slot, self.tz):
                return slot
            slot += self.settings.interval
        return slot

    async def _loop(self) -> None:
        """Sleep until the next slot, run, repeat; nothing a task does can end this loop."""
        if self.state.running_since is not None:
            log.warning(
                "heartbeat interrupted at %s; running it again", iso(self.state.running_since)
            )
            await self._guarded(self.clock.now(), "recovery")
        while True:
            due = self.state.next_run or self.following(self.clock.now())
            await self.clock.sleep_until(due)
            await self._guarded(due, "schedule")

    async def _guarded(self, slot: datetime, trigger: str) -> None:
        """Even a failing database must not end the loop (nor make it spin on one slot)."""
        try:
            await self._scheduled(slot, trigger)
        except Exception:
            log.exception("heartbeat slot %s failed", iso(slot))
            self.state.next_run = self.following(max(slot, self.clock.now()))

    async def _scheduled(self, slot: datetime, trigger: str) -> None:
        now = self.clock.now()
        if self.state.paused:
            self.state.next_run = self.following(max(slot, now))
            await self.store.save(self.state)
            return
        if trigger == "schedule" and not self.settings.active.contains(now, self.tz):
            # A slot missed while the daemon was down, now outside the active hours: its due
            # tasks stay due in HEARTBEAT.md and run at the next active slot.
            self.state.next_run = self.following(now)
            await self.store.save(self.state)
            return
        try:
            await self.run(trigger=trigger, slot=slot)
        except Conflict:
            log.info("heartbeat slot %s skipped: a manual run is in progress", iso(slot))
            self.state.next_run = self.following(max(slot, self.clock.now()))
            await self.store.save(self.state)
        except Exception:
            log.exception("heartbeat failed")

    # -- one heartbeat ---------------------------------------------------------------------

    async def run(self, *, trigger: str = "manual", slot: datetime | None = None) -> RunResult:
        """Run every due task now, within the timeout; returns the heartbeat's result."""
        if self._lock.locked():
            raise Conflict("A heartbeat is already running")
        async with self._lock:
            started = self.clock.now()
            self.state.running_since = started
            if slot is not None:
                self.state.next_run = self.following(max(slot, started))
            await self.store.save(self.state)
            outcomes: list[TaskOutcome] = []
            current: list[Task] = []
            body = asyncio.ensure_future(self._run_tasks(started, outcomes, current))
            deadline = asyncio.ensure_future(
                self.clock.sleep_until(started + self.settings.timeout)
            )
            status = "ok"
            try:
                await asyncio.wait({body, deadline}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                deadline.cancel()
                if not body.done():
                    body.cancel()
                    status = "timeout"
                    try:
                        await body
                    except asyncio.CancelledError:
                        pass
            if status == "timeout":
                await self._timed_out(current, outcomes, started)
            elif body.cancelled():
                status = "error"
                outcomes.append({"status": "error", "error": "the heartbeat was cancelled"})
            elif body.exception() is not None:
                exc = body.exception()
                log.error("heartbeat error: %r", exc, exc_info=exc)
                status = "error"
                outcomes.append({"status": "error", "error": _describe(exc)})
            if any(o.get("status") in ("failed", "timeout") for o in outcomes) and status == "ok":
                status = "partial"
            finished = self.clock.now()
            result: RunResult = {
                "status": status,
                "trigger": trigger,
                "started_at": iso(started),
                "finished_at": iso(finished),
                "ran": sum(1 for o in outcomes if o.get("status") in ("ok", "started")),
                "failed": sum(1 for o in outcomes if o.get("status") in ("failed", "timeout")),
                "tasks": outcomes,
            }
            self.state.last_run = started
            self.state.last_result = result
            self.state.running_since = None
            await self.store.save(self.state)
        async with self._ran:
            self._runs += 1
            self._ran.notify_all()
        return result

    async def wait_runs(self, count: int) -> None:
        """Until `count` heartbeats have finished since start (tests and scripts)."""
        async with self._ran:
            await self._ran.wait_for(lambda: self._runs >= count)

    async def _run_tasks(
        self, now: datetime, outcomes: list[TaskOutcome], current: list[Task]
    ) -> None:
        doc = await asyncio.to_thread(self.file.read)
        await self._report_malformed(doc.malformed, now)
        await self._follow_jobs(now, outcomes)
        pending = await self._anchor_new(doc.pending_tasks, now)
        due = [t for t in pending if t.due is None or t.due <= now]
        due.sort(key=lambda t: (t.priority, t.due or EPOCH))
        for task in due:
            current[:] = [task]
            outcomes.append(await self._run_task(task, now))
            current.clear()

    async def _anchor_new(self, tasks: list[Task], now: datetime) -> list[Task]:
        """A recurring task with a wall-clock schedule and no due line gets its first due time."""
        ready = []
        for task in tasks:
            if task.due is None and task.every is not None and (task.every.at or task.every.cron):
                first = task.every.first_due(now, self.tz)
                if first > now:
                    await asyncio.to_thread(self.file.set_due, task, first)
                    continue
            ready.append(task)
        return ready

    async def _run_task(self, task: Task, now: datetime) -> TaskOutcome:
        """One task, isolated: its failure is logged and counted, never raised."""
        outcome: TaskOutcome = {"id": task.id, "text": task.text, "kind": task.kind, "status": ""}
        try:
            if task.kind == "research":
                result = await self.runner.research(task.text)
            else:
                result = await self.runner.ask(task.text)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is not None and me.cancelling():
                raise  # we are being cancelled (timeout or shutdown)
            # a service cancelled its own work: a failure of this task, not of the heartbeat
            return await self._failed(task, now, "the task was cancelled", outcome)
        except Exception as exc:
            if not isinstance(exc, LocalResearchError):
                log.exception("heartbeat task %r crashed", task.text)
            return await self._failed(task, now, _describe(exc), outcome)
        self._log(now, f"Heartbeat: {task.text}", _log_body(task, result))
        if result.job_id:
            await self.store.add_job(result.job_id, task.text, now)
            self._watch(result.job_id, task.text)
        await self.store.clear_failures(task.id)
        await self._advance(task, now, note="research started" if result.job_id else "")
        outcome["status"] = "started" if result.job_id else "ok"
        outcome["summary"] = result.summary[:MAX_TEXT]
        outcome["link"] = result.link
        return outcome

    async def _failed(
        self, task: Task, now: datetime, error: str, outcome: TaskOutcome, status: str = "failed"
    ) -> TaskOutcome:
        attempts = await self.store.record_failure(task.id, error, now)
        self._log(now, f"Heartbeat task failed: {task.text}", demote_headings(error))
        if task.recurring:
            await self._advance(task, now)
        elif attempts >= MAX_ATTEMPTS:
            await self._advance(task, now, note=f"failed after {attempts} attempts: {error}")
            await self.store.clear_failures(task.id)
        outcome["status"] = status
        outcome["error"] = error
        outcome["attempts"] = attempts
        return outcome

    async def _advance(self, task: Task, now: datetime, note: str = "") -> None:
        """A recurring task gets its next due time; a one-off one moves to Completed."""
        if task.every is not None:
            nxt = task.every.next_after(task.due or now, now, self.tz)
            changed = await asyncio.to_thread(self.file.set_due, task, nxt)
        else:
            changed = await asyncio.to_thread(self.file.complete, task, now, note)
        if not changed:
            log.warning("task %r changed or vanished in HEARTBEAT.md; left as it is", task.text)

    async def _timed_out(
        self, current: list[Task], outcomes: list[TaskOutcome], started: datetime
    ) -> None:
        limit = format_duration(self.settings.timeout)
        log.warning("heartbeat overran its timeout (%s) and was cancelled", limit)
        message = f"Cancelled: the heartbeat overran its timeout of {limit}."
        if current:
            task = current[0]
            outcome: TaskOutcome = {
                "id": task.id, "text": task.text, "kind": task.kind, "status": "timeout"
            }  # fmt: skip
            outcomes.append(await self._failed(task, started, message, outcome, "timeout"))
        else:
            self._log(started, "Heartbeat timed out", message)

    async def _follow_jobs(self, now: datetime, outcomes: list[TaskOutcome]) -> None:
        """Log research jobs started by earlier heartbeats that have finished (if not yet done)."""
        for job_id, text in await self.store.jobs():
            outcome = await self._finish_job(job_id, text)
            if outcome is not None:
                outcomes.append(outcome)

    def _watch(self, job_id: str, text: str) -> None:
        """Log a research job's result as soon as it ends, not at the next heartbeat."""
        if job_id in self._watchers:
            return

        async def watch() -> None:
            try:
                await self.runner.wait_research(job_id)
                await self._finish_job(job_id, text)
            except asyncio.CancelledError:
                raise
            except Exception:  # the next heartbeat's polling logs it instead
                log.exception("following research job %s", job_id)

        task = asyncio.create_task(watch(), name=f"heartbeat-job:{job_id}")
        self._watchers[job_id] = task
        task.add_done_callback(lambda _t: self._watchers.pop(job_id, None))

    async def wait_followed(self) -> None:
        """Until the research jobs being watched now are logged (tests and scripts)."""
        await asyncio.gather(*list(self._watchers.values()), return_exceptions=True)

    async def _finish_job(self, job_id: str, text: str) -> TaskOutcome | None:
        """Log a finished job once, whichever of its watcher or a heartbeat sees it first."""
        async with self._jobs_lock:
            if job_id not in {j for j, _ in await self.store.jobs()}:
                return None  # already logged
            try:
                result = await self.runner.research_result(job_id)
            except LocalResearchError as exc:
                result = TaskResult(summary=f"Research job {job_id}: {exc.message}", failed=True)
            except Exception as exc:
                log.exception("following research job %s", job_id)
                result = TaskResult(summary=f"Research job {job_id}: {_describe(exc)}", failed=True)
            if result is None:
                return None
            self._log(
                self.clock.now(),
                f"Heartbeat research finished: {text}",
                _finished_body(job_id, result),
            )
            await self.store.drop_job(job_id)
        return {
            "id": job_id, "text": text, "kind": "research", "status": "finished",
            "summary": result.summary[:MAX_TEXT], "link": result.link,
        }  # fmt: skip

    async def _report_malformed(self, malformed: list[Malformed], now: datetime) -> None:
        """Write malformed entries to the day's log once, not on every heartbeat."""
        digest = hashlib.sha256(
            "\x00".join(m.raw + m.reason for m in malformed).encode()
        ).hexdigest()[:16]
        if digest == self.state.malformed_digest:
            return
        self.state.malformed_digest = digest
        await self.store.save(self.state)
        if malformed:
            lines = [
                f"- line {m.line_start}: {m.reason}: `{m.raw.strip().splitlines()[0][:120]}`"
                for m in malformed
            ]
            body = "Left untouched in HEARTBEAT.md; fix them to run them:\n" + "\n".join(lines)
            self._log(now, "Heartbeat: entries it cannot read", body)

    def _log(self, when: datetime, title: str, body: str) -> None:
        try:
            append_daily_log(self.workspace, title, body, when.astimezone(self.tz))
        except OSError:
            log.exception("could not write the daily log")

    # -- status and control ----------------------------------------------------------------

    async def set_paused(self, paused: bool) -> HeartbeatStatus:
        self.state.paused = paused
        await self.store.save(self.state)
        return await self.status()

    def brief(self) -> HeartbeatBrief:
        """Enabled, paused, last and next run, last result (for the daemon's status)."""
        return HeartbeatBrief(
            enabled=self.settings.enabled,
            paused=self.state.paused,
            last_run=self.state.last_run,
            next_run=self.state.next_run if self.settings.enabled else None,
            last_result=self.state.last_result,
        )

    async def status(self) -> HeartbeatStatus:
        doc = await asyncio.to_thread(self.file.read)
        return HeartbeatStatus(
            brief=self.brief(),
            running=self._lock.locked(),
            interval=self.settings.interval,
            timeout=self.settings.timeout,
            active_hours=self.settings.active.describe(),
            timezone=str(self.tz),
            file=str(self.file.path),
            pending=[t.listed(self.tz) for t in doc.pending_tasks],
            malformed=list(doc.malformed),
        )

    # -- schedules (recurring tasks, stored in HEARTBEAT.md) -------------------------------

    async def schedules(self) -> list[ListedTask]:
        return await asyncio.to_thread(schedules.list_schedules, self.file)

    async def add_schedule(
        self, every: str, question: str, *, kind: str = "ask", priority: str | None = None
    ) -> ListedTask:
        return await asyncio.to_thread(
            schedules.add_schedule,
            self.file,
            every,
            question,
            self.clock.now(),
            kind=kind,
            priority=priority,
        )

    async def remove_schedule(self, task_id: str) -> ListedTask:
        return await asyncio.to_thread(schedules.remove_schedule, self.file, task_id)


def _wall(day: Any, at: time, tz: tzinfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, LocalResearchError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if exc is not None else "unknown error"


def _log_body(task: Task | None, result: TaskResult) -> str:
    """An answer with its headings demoted (the log's own headings are its structure)."""
    if task is not None and task.kind == "research" and result.job_id:
        return (
            f"Deep research job `{result.job_id}` started. Its key findings are logged here "
            f"when it finishes; full report: `{export_command(result.job_id)}`"
        )
    return demote_headings(result.summary)


def _finished_body(job_id: str, result: TaskResult) -> str:
    """A short quoted digest of the report and the command that shows all of it."""
    return f"{quote(result.summary)}\n\nFull report: `{export_command(job_id)}`"
