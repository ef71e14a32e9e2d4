"""Pause and resume the queue (all of it, or one job type), and queue a daily run by hand."""

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from jobs.models import DailyRunRequest, Priority, resolve_run_id
from worker.client import PayloadRejected, UnknownJob
from worker.ops.actor import Actor
from worker.ops.audit import audited
from worker.ops.context import Ops
from worker.ops.errors import Refused
from worker.registry import DAILY_JOB, job_types
from worker.scheduling.pause import PauseSwitch


class PauseAnswer(BaseModel):
    action: str  # paused | resumed
    job_type: str | None  # None: the whole queue
    paused: list[str]  # what is paused after it, read back (`*`: the whole queue)

    def text(self) -> str:
        now = ", ".join(self.paused) or "nothing"
        return f"{self.action} {self.job_type or 'the queue'}; paused now: {now}"


class EnqueueAnswer(BaseModel):
    job_id: str
    function: str
    job_state: str  # read back

    def text(self) -> str:
        return f"queued {self.function} as {self.job_id} ({self.job_state})"


class DailyRunAnswer(EnqueueAnswer):
    run_id: str  # the day it runs for
    backfill: bool

    def text(self) -> str:
        kind = "a backfill daily run" if self.backfill else "the daily run"
        return f"queued {kind} for {self.run_id} as {self.job_id} ({self.job_state})"


def _checked_type(ops: Ops, job_type: str | None) -> str | None:
    if job_type is not None and job_type not in job_types(ops.settings):
        known = ", ".join(sorted(job_types(ops.settings)))
        raise Refused(f"no job type {job_type!r} (job types: {known})")
    return job_type


async def pause(ops: Ops, actor: Actor, job_type: str | None) -> PauseAnswer:
    """Stop every replica taking jobs (or jobs of one type); running ones finish."""
    return await _switch(ops, actor, job_type, pausing=True)


async def resume(ops: Ops, actor: Actor, job_type: str | None) -> PauseAnswer:
    """Resume everything (the queue and every paused type), or one type."""
    return await _switch(ops, actor, job_type, pausing=False)


async def _switch(ops: Ops, actor: Actor, job_type: str | None, *, pausing: bool) -> PauseAnswer:
    verb, action = ("pause", "paused") if pausing else ("resume", "resumed")
    async with audited(ops, actor, "operate", verb, job_type or "the queue") as outcome:
        _checked_type(ops, job_type)
        switch = PauseSwitch(ops.redis, ops.keys)
        await (switch.pause(job_type) if pausing else switch.resume(job_type))
        now = sorted(await switch.read())  # `*` (the whole queue) first
        answer = PauseAnswer(action=action, job_type=job_type, paused=now)
        outcome.line = answer.text()
        return answer


async def enqueue(
    ops: Ops,
    actor: Actor,
    name: str,
    payload: dict[str, Any] | None,
    priority: Priority | None = None,
) -> EnqueueAnswer:
    """Queue job `name` after checking its payload with the worker's own model."""
    async with audited(ops, actor, "operate", "enqueue", name) as outcome:
        job_id = await _enqueue(ops, name, payload, priority)
        report = await ops.client.report(job_id)
        answer = EnqueueAnswer(job_id=job_id, function=name, job_state=report.state)
        outcome.line = answer.text()
        return answer


async def enqueue_daily_run(
    ops: Ops, actor: Actor, run_date: date | None, backfill: bool
) -> DailyRunAnswer:
    """Queue a daily run for today, or for a past day as an explicit backfill. A second run of
    a day joins that day's run and adds nothing (its job says so when it ends)."""
    day = run_date.isoformat() if run_date else "today"
    async with audited(ops, actor, "operate", "enqueue daily run", day) as outcome:
        request = DailyRunRequest(run_date=run_date, backfill=backfill)
        payload = request.model_dump(mode="json", exclude_defaults=True)
        job_id = await _enqueue(ops, DAILY_JOB, payload or None, None)
        report = await ops.client.report(job_id)
        answer = DailyRunAnswer(
            job_id=job_id,
            function=DAILY_JOB,
            job_state=report.state,
            run_id=resolve_run_id(request, datetime.now(ops.settings.tz).date()),
            backfill=backfill,
        )
        outcome.line = answer.text()
        return answer


async def _enqueue(
    ops: Ops, name: str, payload: dict[str, Any] | None, priority: Priority | None
) -> str:
    try:
        return await ops.client.enqueue(name, payload, priority=priority)
    except PayloadRejected as exc:
        raise Refused(f"{name}: " + "; ".join(exc.problems)) from None
    except UnknownJob as exc:
        raise Refused(str(exc)) from None
