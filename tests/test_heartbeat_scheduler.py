"""The scheduler on an injectable clock: fixed grid, restarts, timeouts, crashes, DST, hours."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from localresearch.heartbeat import tasks as md
from localresearch.heartbeat.clock import ManualClock
from localresearch.heartbeat.digest import report_digest
from localresearch.heartbeat.runner import TaskResult
from localresearch.heartbeat.schedule import ActiveHours
from localresearch.heartbeat.service import HeartbeatService, HeartbeatSettings
from localresearch.paths import Paths
from localresearch.store import Database

NY = ZoneInfo("America/New_York")
WAIT = 10.0  # safety net only: tests never wait on the real clock


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


class ScriptedRunner:
    """Answers every task at once unless a behaviour is scripted for its question."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.behaviour: dict[str, Callable[[], Awaitable[TaskResult]]] = {}
        self.jobs: dict[str, TaskResult | None] = {}
        self.ended: dict[str, asyncio.Event] = {}

    async def _do(self, kind: str, question: str) -> TaskResult:
        self.calls.append((kind, question))
        script = self.behaviour.get(question)
        if script is not None:
            return await script()
        return TaskResult(summary=f"answer to {question}")

    async def ask(self, question: str) -> TaskResult:
        return await self._do("ask", question)

    async def research(self, question: str) -> TaskResult:
        await self._do("research", question)
        job_id = f"job{len(self.jobs) + 1}"
        self.jobs[job_id] = None
        return TaskResult(summary="started", link=f"/r/{job_id}", job_id=job_id)

    async def research_result(self, job_id: str) -> TaskResult | None:
        return self.jobs.get(job_id)

    async def wait_research(self, job_id: str) -> None:
        await self.ended.setdefault(job_id, asyncio.Event()).wait()

    def finish(self, job_id: str, result: TaskResult) -> None:
        """The job ends: its result is readable and its waiters wake up."""
        self.jobs[job_id] = result
        self.ended.setdefault(job_id, asyncio.Event()).set()

    def questions(self) -> list[str]:
        return [q for _, q in self.calls]


@pytest.fixture
async def db(paths: Paths) -> AsyncIterator[Database]:
    database = Database(paths.database)
    await asyncio.to_thread(database.open)
    yield database
    await asyncio.to_thread(database.close)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


Factory = Callable[..., Awaitable[HeartbeatService]]


@pytest.fixture
async def make_service(
    db: Database, workspace: Path
) -> AsyncIterator[Callable[..., Awaitable[HeartbeatService]]]:
    started: list[HeartbeatService] = []

    async def make(
        clock: ManualClock,
        runner: ScriptedRunner,
        *,
        interval: timedelta = timedelta(minutes=30),
        limit: timedelta | None = None,
        active: str = "",
        start: bool = True,
    ) -> HeartbeatService:
        settings = HeartbeatSettings(
            enabled=True,
            interval=interval,
            active=ActiveHours.parse(active),
            timeout=limit or interval / 2,
            tz=NY,
        )
        service = HeartbeatService(settings, workspace, db, runner, clock=clock)
        if start:
            await service.start()
            started.append(service)
        return service

    yield make
    for service in started:
        await service.stop()


def write_tasks(workspace: Path, body: str) -> Path:
    path = workspace / "HEARTBEAT.md"
    path.write_text(f"# Heartbeat\n\n## Pending\n\n{body}\n## Completed\n", encoding="utf-8")
    return path


def daily_log(workspace: Path, day: str) -> str:
    path = workspace / "memory" / f"{day}.md"
    return path.read_text(encoding="utf-8") if path.exists() else ""


async def settle(service: HeartbeatService, runs: int) -> None:
    await asyncio.wait_for(service.wait_runs(runs), WAIT)


async def test_fixed_schedule_does_not_drift(make_service: Factory, workspace: Path) -> None:
    write_tasks(workspace, "- Tick\n  every: 30m\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 7))
    runner = ScriptedRunner()

    async def slow() -> TaskResult:
        clock.advance(timedelta(minutes=7))  # the run takes 7 minutes
        return TaskResult(summary="done")

    runner.behaviour["Tick"] = slow
    service = await make_service(clock, runner)
    assert service.state.next_run == ny(2026, 6, 1, 10, 30)
    for n, slot in enumerate([ny(2026, 6, 1, 10, 30), ny(2026, 6, 1, 11, 0)], start=1):
        clock.set(slot)
        await settle(service, n)
        assert service.state.last_run == slot
        assert service.state.next_run == slot + timedelta(minutes=30)  # not 7 minutes later
    assert runner.questions() == ["Tick", "Tick"]
    task = service.file.read().pending_tasks[0]
    assert task.due == ny(2026, 6, 1, 11, 30)  # the task's own grid: 10:37 + 30m rounded to grid


async def test_restart_across_a_due_time_runs_once(make_service: Factory, workspace: Path) -> None:
    write_tasks(workspace, "- Report\n  due: 2026-06-01 10:15\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 7))
    runner = ScriptedRunner()
    first = await make_service(clock, runner)
    assert first.state.next_run == ny(2026, 6, 1, 10, 30)
    await first.stop()  # the daemon goes down before 10:30...

    clock.set(ny(2026, 6, 1, 10, 52))  # ...and comes back after it
    second = await make_service(clock, runner)
    await settle(second, 1)
    assert runner.questions() == ["Report"]  # the missed heartbeat ran, once
    assert second.state.last_run == ny(2026, 6, 1, 10, 52)  # when it actually ran
    assert second.state.last_result is not None
    assert second.state.last_result["trigger"] == "schedule"
    assert second.state.next_run == ny(2026, 6, 1, 11, 0)
    await second.stop()

    third = await make_service(clock, runner)  # restart again before 11:00: nothing runs
    await asyncio.sleep(0.05)
    assert runner.questions() == ["Report"]
    assert third.state.next_run == ny(2026, 6, 1, 11, 0)
    doc = third.file.read()
    assert doc.pending_tasks == []
    assert "- [x] Report (done 2026-06-01 10:52)" in third.file.path.read_text()


async def test_interrupted_heartbeat_is_resumed_after_restart(
    make_service: Factory, workspace: Path
) -> None:
    write_tasks(workspace, "- Long one\n- Quick one\n  priority: low\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 29))
    runner = ScriptedRunner()
    entered = asyncio.Event()

    async def hang() -> TaskResult:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    runner.behaviour["Long one"] = hang
    first = await make_service(clock, runner)
    clock.set(ny(2026, 6, 1, 10, 30))
    await asyncio.wait_for(entered.wait(), WAIT)
    await first.stop()  # killed mid-run
    assert first.state.running_since is not None

    del runner.behaviour["Long one"]
    second = await make_service(clock, runner)
    await settle(second, 1)
    assert second.state.last_result is not None
    assert second.state.last_result["trigger"] == "recovery"
    assert runner.questions() == ["Long one", "Long one", "Quick one"]
    text = second.file.path.read_text()
    assert text.count("- [x] Long one") == 1 and text.count("- [x] Quick one") == 1


async def test_overrunning_heartbeat_is_cancelled_and_logged(
    make_service: Factory, workspace: Path
) -> None:
    write_tasks(workspace, "- Stuck\n  every: 1d\n  priority: high\n- Later\n  priority: low\n")
    clock = ManualClock(ny(2026, 6, 1, 9, 59))
    runner = ScriptedRunner()
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck() -> TaskResult:
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    runner.behaviour["Stuck"] = stuck
    service = await make_service(clock, runner, limit=timedelta(minutes=10))
    clock.set(ny(2026, 6, 1, 10, 0))
    await asyncio.wait_for(entered.wait(), WAIT)
    clock.advance(timedelta(minutes=10))
    await settle(service, 1)
    assert cancelled.is_set()
    result = service.state.last_result
    assert result is not None and result["status"] == "timeout"
    assert result["tasks"][0]["status"] == "timeout"
    assert runner.questions() == ["Stuck"]  # "Later" waits for the next heartbeat
    log = daily_log(workspace, "2026-06-01")
    assert "Heartbeat task failed: Stuck" in log and "overran its timeout of 10m" in log
    stuck_task = next(t for t in service.file.read().pending_tasks if t.text == "Stuck")
    assert stuck_task.due == ny(2026, 6, 2, 10, 0)  # the recurring task moved on
    # the scheduler is still alive and runs the next slot
    del runner.behaviour["Stuck"]
    clock.set(ny(2026, 6, 1, 10, 30))
    await settle(service, 2)
    assert runner.questions() == ["Stuck", "Later"]


async def test_a_crashing_task_does_not_stop_the_others(
    make_service: Factory, workspace: Path
) -> None:
    write_tasks(workspace, "- Boom\n  priority: high\n- Fine\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 29))
    runner = ScriptedRunner()

    async def boom() -> TaskResult:
        raise RuntimeError("kaput")

    runner.behaviour["Boom"] = boom
    service = await make_service(clock, runner)
    for n, minute in enumerate((30, 60, 90), start=1):
        clock.set(ny(2026, 6, 1, 10, 0) + timedelta(minutes=minute))
        await settle(service, n)
    result = service.state.last_result
    assert result is not None and result["status"] == "partial"
    assert runner.questions() == ["Boom", "Fine", "Boom", "Boom"]
    text = service.file.path.read_text()
    # one-off: retried, then moved to Completed as failed after 3 attempts
    assert (
        "- [x] Boom (done 2026-06-01 11:30 — failed after 3 attempts: RuntimeError: kaput)" in text
    )
    assert "- [x] Fine (done 2026-06-01 10:30)" in text
    log = daily_log(workspace, "2026-06-01")
    assert log.count("Heartbeat task failed: Boom") == 3
    assert "## 10:30 Heartbeat: Fine\n\nanswer to Fine" in log


async def test_active_hours_skip_the_night(make_service: Factory, workspace: Path) -> None:
    write_tasks(workspace, "- Nightly\n  due: 2026-06-01 23:00\n")
    clock = ManualClock(ny(2026, 6, 1, 21, 40))
    runner = ScriptedRunner()
    service = await make_service(clock, runner, active="08:00-22:00")
    assert service.state.next_run == ny(2026, 6, 2, 8, 0)
    assert service.following(ny(2026, 6, 2, 8, 0)) == ny(2026, 6, 2, 8, 30)
    clock.set(ny(2026, 6, 2, 8, 0))
    await settle(service, 1)
    assert runner.questions() == ["Nightly"]
    wrap = await make_service(clock, runner, active="22:00-06:00", start=False)
    assert wrap.following(ny(2026, 6, 2, 8, 0)) == ny(2026, 6, 2, 22, 0)
    assert wrap.following(ny(2026, 6, 2, 23, 40)) == ny(2026, 6, 3, 0, 0)


async def test_dst_spring_forward_keeps_local_times(make_service: Factory, workspace: Path) -> None:
    write_tasks(workspace, "- Morning brief\n  every: every 1d at 08:00\n  due: 2026-03-07 08:00\n")
    clock = ManualClock(ny(2026, 3, 7, 7, 50))
    runner = ScriptedRunner()
    service = await make_service(clock, runner, active="07:00-23:00")
    runs = 0
    for day in (7, 8, 9):  # 8 March 2026: clocks go from 02:00 to 03:00 in New York
        clock.set(ny(2026, 3, day, 8, 0))
        runs += 1
        await settle(service, runs)
        assert service.state.last_run == ny(2026, 3, day, 8, 0)
        task = service.file.read().pending_tasks[0]
        assert task.due == ny(2026, 3, day + 1, 8, 0)
        assert f"due: 2026-03-{day + 1:02d} 08:00" in service.file.path.read_text()
        clock.set(ny(2026, 3, day, 22, 59))
        runs += 1 if day < 9 else 0
        if day < 9:
            await settle(service, runs)
    assert runner.questions() == ["Morning brief"] * 3
    # slots stay 30 minutes of real time apart through the jump
    always = await make_service(clock, runner, start=False)
    assert always.following(ny(2026, 3, 8, 1, 45)) - ny(2026, 3, 8, 1, 45) == timedelta(minutes=15)
    assert always.following(ny(2026, 3, 8, 1, 59)).astimezone(NY) == ny(2026, 3, 8, 3, 0)


async def test_dst_fall_back_runs_daily_task_once(make_service: Factory, workspace: Path) -> None:
    write_tasks(workspace, "- Nightly\n  every: every 1d at 01:30\n  due: 2026-10-31 01:30\n")
    clock = ManualClock(ny(2026, 10, 31, 1, 20))
    runner = ScriptedRunner()
    service = await make_service(clock, runner)
    clock.set(ny(2026, 10, 31, 1, 30))
    await settle(service, 1)
    due = service.file.read().pending_tasks[0].due
    assert due == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # first 01:30 (EDT)
    for n, hours in enumerate((5.5, 6, 6.5, 7), start=2):  # through both 01:30s
        clock.set(datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=hours))
        await settle(service, n)
    assert runner.questions() == ["Nightly", "Nightly"]
    assert service.file.read().pending_tasks[0].due == ny(2026, 11, 2, 1, 30)


async def test_research_task_is_followed_until_its_report(
    make_service: Factory, workspace: Path
) -> None:
    write_tasks(workspace, "- Survey RAG\n  kind: research\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 29))
    runner = ScriptedRunner()
    service = await make_service(clock, runner)
    clock.set(ny(2026, 6, 1, 10, 30))
    await settle(service, 1)
    assert runner.calls == [("research", "Survey RAG")]
    assert "research started" in service.file.path.read_text()
    assert "Deep research job `job1` started." in daily_log(workspace, "2026-06-01")
    clock.set(ny(2026, 6, 1, 11, 0))  # still running: nothing to log yet
    await settle(service, 2)
    runner.jobs["job1"] = TaskResult(summary="# RAG report\n\nFindings [1].", link="/r/job1")
    clock.set(ny(2026, 6, 1, 11, 30))
    await settle(service, 3)
    log = daily_log(workspace, "2026-06-01")
    assert "Heartbeat research finished: Survey RAG" in log and "Findings [1]." in log
    clock.set(ny(2026, 6, 1, 12, 0))
    await settle(service, 4)
    assert daily_log(workspace, "2026-06-01").count("Findings [1].") == 1


async def test_malformed_entries_reported_once(make_service: Factory, workspace: Path) -> None:
    path = write_tasks(workspace, "- Fine\n- Odd\n  colour: red\n")
    original_bad = "- Odd\n  colour: red\n"
    clock = ManualClock(ny(2026, 6, 1, 10, 29))
    runner = ScriptedRunner()
    service = await make_service(clock, runner)
    for n, minute in enumerate((30, 60), start=1):
        clock.set(ny(2026, 6, 1, 10, 0) + timedelta(minutes=minute))
        await settle(service, n)
    log = daily_log(workspace, "2026-06-01")
    assert log.count("entries it cannot read") == 1
    assert "unknown field 'colour'" in log
    assert original_bad in path.read_text()
    status = await service.status()
    assert status.malformed[0].reason.startswith("unknown field 'colour'")


async def test_a_byte_that_is_not_utf8_is_one_malformed_entry(
    make_service: Factory, workspace: Path
) -> None:
    path = write_tasks(workspace, "- Fine\n  every: 30m\n")
    # What an editor saving Latin-1 writes, under Pending and under Completed.
    raw = path.read_bytes().replace(b"30m\n", b"30m\n- Caf\xe9 latte\n")
    path.write_bytes(raw + b"- Caf\xe9 done\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 29))
    runner = ScriptedRunner()
    service = await make_service(clock, runner)
    clock.set(ny(2026, 6, 1, 10, 30))
    await settle(service, 1)
    assert runner.calls == [("ask", "Fine")]  # the valid task still runs
    status = await service.status()
    assert [m.text for m in status.malformed] == ["- Caf\ufffd latte", "- Caf\ufffd done"]
    lines = path.read_bytes().splitlines()
    assert [lines[m.line_start - 1] for m in status.malformed] == [
        b"- Caf\xe9 latte",
        b"- Caf\xe9 done",
    ]
    assert all(m.reason.startswith("not UTF-8") for m in status.malformed)
    assert "not UTF-8" in daily_log(workspace, "2026-06-01")
    assert b"- Caf\xe9 latte\n" in path.read_bytes()  # the user's bytes are kept


async def test_pause_skips_slots_and_resume_restores(
    make_service: Factory, workspace: Path
) -> None:
    write_tasks(workspace, "- Tick\n  every: 30m\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 29))
    runner = ScriptedRunner()
    service = await make_service(clock, runner)
    await service.set_paused(True)
    clock.set(ny(2026, 6, 1, 10, 30))
    for _ in range(20):
        await asyncio.sleep(0)
        if service.state.next_run == ny(2026, 6, 1, 11, 0):
            break
    assert service.state.next_run == ny(2026, 6, 1, 11, 0)
    assert runner.calls == []
    await service.set_paused(False)
    clock.set(ny(2026, 6, 1, 11, 0))
    await settle(service, 1)
    assert runner.questions() == ["Tick"]


async def test_manual_run_while_running_is_a_conflict(
    make_service: Factory, workspace: Path
) -> None:
    from localresearch.errors import Conflict

    write_tasks(workspace, "- Slow\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 0))
    runner = ScriptedRunner()
    gate = asyncio.Event()

    async def slow() -> TaskResult:
        await gate.wait()
        return TaskResult(summary="ok")

    runner.behaviour["Slow"] = slow
    service = await make_service(clock, runner, start=False)
    first = asyncio.create_task(service.run())
    await asyncio.sleep(0.05)
    with pytest.raises(Conflict):
        await service.run()
    gate.set()
    result = await first
    assert result["ran"] == 1 and result["trigger"] == "manual"
    assert md.parse(service.file.path.read_text(), NY).pending_tasks == []


async def test_user_edits_during_a_run_are_kept(make_service: Factory, workspace: Path) -> None:
    path = write_tasks(workspace, "- Daily digest\n  every: 1d\n  due: 2026-06-01 10:00\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 29))
    runner = ScriptedRunner()

    async def user_edits_meanwhile() -> TaskResult:
        text = path.read_text()
        text = text.replace("# Heartbeat\n", "# Heartbeat\n\nMy own notes.\n")
        text = text.replace("## Completed", "- A task added while the digest ran\n\n## Completed")
        path.write_text(text)
        return TaskResult(summary="digest")

    runner.behaviour["Daily digest"] = user_edits_meanwhile
    service = await make_service(clock, runner)
    clock.set(ny(2026, 6, 1, 10, 30))
    await settle(service, 1)
    text = path.read_text()
    assert "My own notes." in text
    assert "- A task added while the digest ran" in text
    assert "  due: 2026-06-02 10:00\n" in text
    assert [t.text for t in service.file.read().pending_tasks] == [
        "Daily digest",
        "A task added while the digest ran",
    ]


async def test_loop_survives_a_failing_store(
    make_service: Factory, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tasks(workspace, "- Tick\n  every: 30m\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 29))
    runner = ScriptedRunner()
    service = await make_service(clock, runner)
    real_save = service.store.save
    failures = []

    async def flaky_save(state: object) -> None:
        if not failures:
            failures.append(1)
            raise OSError("disk full")
        await real_save(state)  # type: ignore[arg-type]

    monkeypatch.setattr(service.store, "save", flaky_save)
    clock.set(ny(2026, 6, 1, 10, 30))
    for _ in range(50):
        await asyncio.sleep(0)
        if service.state.next_run == ny(2026, 6, 1, 11, 0):
            break
    assert failures and service.state.next_run == ny(2026, 6, 1, 11, 0)
    clock.set(ny(2026, 6, 1, 11, 0))
    await settle(service, 1)
    assert runner.questions() == ["Tick"]


async def test_a_task_cancelled_by_its_service_is_just_a_failure(
    make_service: Factory, workspace: Path
) -> None:
    write_tasks(workspace, "- Cancelled inside\n  priority: high\n- Next\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 0))
    runner = ScriptedRunner()

    async def cancelled_inside() -> TaskResult:
        raise asyncio.CancelledError()

    runner.behaviour["Cancelled inside"] = cancelled_inside
    service = await make_service(clock, runner, start=False)
    result = await service.run()
    assert [t["status"] for t in result["tasks"]] == ["failed", "ok"]
    assert result["tasks"][0]["error"] == "the task was cancelled"


async def test_a_changed_interval_applies_after_restart(
    make_service: Factory, workspace: Path
) -> None:
    write_tasks(workspace, "- Tick\n  every: 30m\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 7))
    runner = ScriptedRunner()
    first = await make_service(clock, runner, interval=timedelta(hours=2))
    assert first.state.next_run == ny(2026, 6, 1, 12, 0)
    await first.stop()

    clock.set(ny(2026, 6, 1, 10, 10))  # restarted with interval = 30m: 12:00 is too late
    second = await make_service(clock, runner)
    assert second.state.next_run == ny(2026, 6, 1, 10, 30)
    assert (await second.store.load()).next_run == ny(2026, 6, 1, 10, 30)  # persisted
    clock.set(ny(2026, 6, 1, 10, 30))
    await settle(second, 1)
    assert runner.questions() == ["Tick"] and second.state.last_run == ny(2026, 6, 1, 10, 30)
    await second.stop()

    clock.set(ny(2026, 6, 1, 10, 40))  # a longer interval again: the earlier 11:00 is kept
    third = await make_service(clock, runner, interval=timedelta(hours=2))
    assert third.state.next_run == ny(2026, 6, 1, 11, 0)


async def test_changed_active_hours_apply_after_restart(
    make_service: Factory, workspace: Path
) -> None:
    clock = ManualClock(ny(2026, 6, 1, 21, 40))
    runner = ScriptedRunner()
    first = await make_service(clock, runner, active="08:00-22:00")
    assert first.state.next_run == ny(2026, 6, 2, 8, 0)
    await first.stop()
    second = await make_service(clock, runner)  # now always active
    assert second.state.next_run == ny(2026, 6, 1, 22, 0)


async def test_restart_with_a_new_interval_still_runs_a_missed_slot_once(
    make_service: Factory, workspace: Path
) -> None:
    write_tasks(workspace, "- Report\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 7))
    runner = ScriptedRunner()
    first = await make_service(clock, runner)
    assert first.state.next_run == ny(2026, 6, 1, 10, 30)
    await first.stop()
    clock.set(ny(2026, 6, 1, 10, 52))  # down across 10:30, back with interval = 2h
    second = await make_service(clock, runner, interval=timedelta(hours=2))
    await settle(second, 1)
    assert runner.questions() == ["Report"]
    assert second.state.last_run == ny(2026, 6, 1, 10, 52)
    assert second.state.next_run == ny(2026, 6, 1, 12, 0)


REPORT = """# Survey RAG

This report draws on 3 sources across 2 research dimensions.

## Key findings

- **Retrieval**: hybrid search beats BM25 alone [1].
- **Evaluation**: faithfulness needs human checks [2].

## Retrieval

Long details that stay in the report [1].
"""


async def test_finished_research_is_logged_at_once_as_a_quoted_digest(
    make_service: Factory, workspace: Path
) -> None:
    write_tasks(workspace, "- Survey RAG\n  kind: research\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 29))
    runner = ScriptedRunner()
    service = await make_service(clock, runner)
    clock.set(ny(2026, 6, 1, 10, 30))
    await settle(service, 1)
    log = daily_log(workspace, "2026-06-01")
    assert "full report: `research jobs export job1`" in log
    clock.set(ny(2026, 6, 1, 10, 41))  # the job ends between two heartbeats
    runner.finish("job1", TaskResult(summary=report_digest(REPORT), link="/r/job1"))
    await asyncio.wait_for(service.wait_followed(), WAIT)
    log = daily_log(workspace, "2026-06-01")
    entry = log.split("## 10:41 Heartbeat research finished: Survey RAG\n\n", 1)[1]
    assert entry == (
        "> - **Retrieval**: hybrid search beats BM25 alone [1].\n"
        "> - **Evaluation**: faithfulness needs human checks [2].\n\n"
        "Full report: `research jobs export job1`\n"
        "<!-- /localresearch:entry -->\n\n"  # the daemon's entry ends (memory/kinds.py)
    )
    assert [ln for ln in log.splitlines() if ln.startswith("#")] == [
        "# 2026-06-01",
        "## 10:30 Heartbeat: Survey RAG",
        "## 10:41 Heartbeat research finished: Survey RAG",
    ]
    clock.set(ny(2026, 6, 1, 11, 0))  # the next heartbeat does not log it again
    await settle(service, 2)
    assert daily_log(workspace, "2026-06-01").count("research finished") == 1


async def test_a_job_running_across_a_restart_is_still_logged_promptly(
    make_service: Factory, workspace: Path
) -> None:
    write_tasks(workspace, "- Survey RAG\n  kind: research\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 29))
    runner = ScriptedRunner()
    first = await make_service(clock, runner)
    clock.set(ny(2026, 6, 1, 10, 30))
    await settle(first, 1)
    await first.stop()
    second = await make_service(clock, runner)
    clock.set(ny(2026, 6, 1, 10, 35))
    runner.finish("job1", TaskResult(summary="# Title\n\nIt works.", link="/r/job1"))
    await asyncio.wait_for(second.wait_followed(), WAIT)
    log = daily_log(workspace, "2026-06-01")
    assert "## 10:35 Heartbeat research finished: Survey RAG\n\n> **Title**\n>\n> It works." in log


async def test_an_answer_with_headings_does_not_break_the_log(
    make_service: Factory, workspace: Path
) -> None:
    write_tasks(workspace, "- Digest\n")
    clock = ManualClock(ny(2026, 6, 1, 10, 0))
    runner = ScriptedRunner()

    async def markdown_answer() -> TaskResult:
        return TaskResult(summary="# Digest\n\n## Notes\n\nAll good.\n\n```sh\n# a comment\n```")

    runner.behaviour["Digest"] = markdown_answer
    service = await make_service(clock, runner, start=False)
    await service.run()
    log = daily_log(workspace, "2026-06-01")
    assert [ln for ln in log.splitlines() if ln.startswith("#")] == [
        "# 2026-06-01",
        "## 10:00 Heartbeat: Digest",
        "# a comment",  # inside a code fence: not a heading, left alone
    ]
    assert "**Digest**\n\n**Notes**\n\nAll good." in log
