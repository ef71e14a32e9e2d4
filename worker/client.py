"""The operator's side of the queue: enqueue by name, read a job's state, wait for a daily run."""

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from arq.connections import ArqRedis, create_pool
from arq.jobs import Job, JobStatus
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from jobs.errors import InvalidPayload
from jobs.models import DailyRunRequest, Priority, RunSummary, resolve_run_id
from jobs.prospecting.runs import RunLedger
from settings import Settings
from worker.connections import JOB_EXPIRES_MS, redis_client, redis_settings
from worker.engine.arqjobs import IN_PROGRESS_KEY_PREFIX
from worker.engine.serializer import deserialize, serialize
from worker.keys import WorkerKeys
from worker.runtime.progress import ProgressRecord, read_progress
from worker.scheduling.pause import PauseSwitch
from worker.scheduling.queueorder import PriorityScale, QueueOrder

if TYPE_CHECKING:  # the runtime and the job bodies stay unloaded in a client
    from worker.runtime.spec import JobSpec

# The job types a client may enqueue: worker.registry.job_specs(settings), handed in by whoever
# enqueues, so a client that only reads (status, wait) never loads the job bodies.
Specs = Mapping[str, "JobSpec[Any, Any]"]
NO_SPECS: Specs = MappingProxyType({})

State = Literal["queued", "deferred", "in_progress", "complete", "failed", "not_found"]

# Queued jobs looked at when asking whether any worker is taking jobs: the oldest ones are the
# ones a live worker would be running, and a bound keeps the check one round trip on a long queue.
BUSY_SAMPLE = 200


class UnknownJob(Exception):
    """An enqueue named no job this worker runs."""


class JobIdTaken(Exception):
    """A caller-chosen job id names a job that is queued, running, or whose result is still
    kept: arq queued nothing."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"a job with id {job_id!r} exists already (queued, running or ended)")
        self.job_id = job_id


class PayloadRejected(ValueError):
    """A payload the job's own model refuses: it would only be dead-lettered by the worker."""

    def __init__(self, name: str, problems: list[str]) -> None:
        super().__init__(f"invalid payload for {name}: " + "; ".join(problems))
        self.problems = problems


class JobReport(BaseModel):
    job_id: str
    function: str | None = None
    state: State
    job_try: int | None = None
    # The job's argument as enqueued (its payload), while its record or result is kept.
    payload: Any = None
    progress: ProgressRecord | None = None
    result: Any = None
    error: str | None = None
    run: RunSummary | None = None  # for a daily run: the tally of its per-prospect jobs
    # For a daily job that found its day's run already fanned out: says the figures are that
    # run's, not this job's work.
    note: str | None = None


def finished(report: JobReport) -> bool:
    """The job has ended and, for a daily run, so has every prospect job it fanned out."""
    if report.state in ("failed", "not_found"):
        return True
    return report.state == "complete" and (report.run is None or report.run.state == "complete")


def payload_problems(error: ValidationError) -> list[str]:
    """One `field: reason` per problem, without echoing whole payloads back."""
    problems = []
    for item in error.errors(include_url=False, include_context=False):
        field = ".".join(str(part) for part in item["loc"]) or "payload"
        given = item.get("input")
        shown = f" (got {given!r})" if isinstance(given, str | int | float | bool) else ""
        reason = item["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {reason}{shown}")
    return problems


def check_payload(
    specs: Specs, name: str, payload: dict[str, Any] | None, *, today: date
) -> "JobSpec[Any, Any]":
    """Check a payload with the model the worker itself validates it with; the job's spec.
    `today` is the worker's local day (settings.tz), which a daily run's date is checked
    against."""
    known = specs
    if name not in known:
        raise UnknownJob(f"unknown job {name!r}; known jobs: {', '.join(sorted(known))}")
    try:
        model = known[name].payload.model_validate(payload or {})
    except ValidationError as exc:
        raise PayloadRejected(name, payload_problems(exc)) from None
    if isinstance(model, DailyRunRequest):
        # The worker would refuse another day without backfill for good (a dead letter and its
        # alert): refused here instead, against the same local day the worker uses.
        try:
            resolve_run_id(model, today)
        except InvalidPayload as exc:
            raise PayloadRejected(name, [str(exc)]) from None
    return known[name]


class QueueClient:
    def __init__(
        self, settings: Settings, arq: ArqRedis, redis: Redis, *, specs: Specs = NO_SPECS
    ) -> None:
        self._settings = settings
        self._specs = specs
        self._arq = arq
        self._redis = redis
        self._keys = WorkerKeys(settings.key_prefix)
        self._ledger = RunLedger(redis, self._keys)
        self._order = QueueOrder(redis, self._keys, queue_name=settings.queue_name)

    @classmethod
    async def connect(
        cls, settings: Settings, *, specs: Specs = NO_SPECS, conn_retries: int | None = None
    ) -> "QueueClient":
        """`specs`: the job types this client may enqueue (none: it only reads).
        `conn_retries=0` fails at once on an unreachable Redis, without arq's retry warnings
        (an operator at a prompt wants one line, not five over five seconds)."""
        arq_settings = redis_settings(settings)
        if conn_retries is not None:
            arq_settings = dataclasses.replace(arq_settings, conn_retries=conn_retries)
        arq = await create_pool(
            arq_settings,
            job_serializer=serialize,
            job_deserializer=deserialize,
            default_queue_name=settings.queue_name,
        )
        return cls(settings, arq, redis_client(settings), specs=specs)

    @property
    def redis(self) -> Redis:
        return self._redis

    @property
    def queue_redis(self) -> Redis:
        """The queue's connection, with bytes replies: queue members and job records need not be
        UTF-8 (worker/observability/queue_depth.py reads them so)."""
        return self._arq

    @property
    def queue_name(self) -> str:
        return self._settings.queue_name

    async def close(self) -> None:
        await self._arq.aclose()
        await self._redis.aclose()

    async def enqueue(
        self,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        job_id: str | None = None,
        defer_s: float | None = None,
        priority: Priority | None = None,
    ) -> str:
        """Queue a job after checking its payload here, so a bad one is never queued.

        With arq's own call. A priority scores the job ahead of its due time by its class
        (worker/scheduling/queueorder.py) and keeps its shift beside it, so a retry keeps the
        class; none is the job type's own (`JobSpec.priority`: reply for process_reply). With
        `job_id`, a job of that id that is queued or still has its result is not queued again
        (arq's dedup): JobIdTaken, so nobody is told a job was queued when none was."""
        spec = check_payload(
            self._specs, name, payload, today=datetime.now(self._settings.tz).date()
        )
        shift_ms = PriorityScale(self._settings.priority_step_s).shift_ms(priority or spec.priority)
        now_ms, delay_ms = int(time.time() * 1000), int((defer_s or 0) * 1000)
        # Due now: scored ahead by its class. Due later: scored at its due time (never runnable
        # before it), and put in its class when due, as a deferred retry is (below).
        score_ms = now_ms + delay_ms if delay_ms else now_ms - shift_ms
        job = await self._arq.enqueue_job(
            name,
            *([payload] if payload else []),
            _job_id=job_id,
            _defer_until=datetime.fromtimestamp(score_ms / 1000, UTC)
            if score_ms != now_ms
            else None,
            _expires=timedelta(milliseconds=JOB_EXPIRES_MS),
        )
        if job is None and job_id is not None:
            raise JobIdTaken(job_id)
        if job is None:  # only a caller-chosen _job_id can collide
            raise RuntimeError(f"arq refused to enqueue {name}")
        async with self._redis.pipeline(transaction=False) as pipe:
            if shift_ms:
                pipe.set(self._keys.priority(job.job_id), shift_ms, px=JOB_EXPIRES_MS)
            pipe.publish(self._keys.wake, "enqueued")  # idle workers start it now
            await pipe.execute()
        if shift_ms and delay_ms:
            await self._order.reschedule(job.job_id, now_ms, delay_ms)
        return job.job_id

    async def report(self, job_id: str) -> JobReport:
        job = Job(
            job_id, self._arq, _queue_name=self._settings.queue_name, _deserializer=deserialize
        )
        status, info, progress = await asyncio.gather(
            job.status(), job.info(), read_progress(self._redis, self._keys, job_id)
        )
        report = JobReport(
            job_id=job_id,
            function=info.function if info else None,
            state=status.value if status != JobStatus.not_found else "not_found",
            job_try=info.job_try if info else None,
            payload=info.args[0] if info and info.args else None,
            progress=progress,
        )
        if status == JobStatus.complete:
            outcome = await job.result_info()
            if outcome is not None and not outcome.success:
                report.state = "failed"
                report.error = str(outcome.result)
            elif outcome is not None:
                report.result = outcome.result
        run_id = _run_id(report)
        if run_id is not None:
            report.run = await self._ledger.summary(run_id)
        report.note = repeat_note(report.result)
        return report

    async def queue_busy(self) -> bool:
        """Whether some worker is running a job of this queue right now (arq marks each
        running job with an in-progress key)."""
        job_ids = await self._redis.zrange(self._settings.queue_name, 0, BUSY_SAMPLE - 1)
        if not job_ids:
            return False
        running = await self._redis.exists(*(IN_PROGRESS_KEY_PREFIX + job for job in job_ids))
        return int(running) > 0

    async def paused(self) -> frozenset[str]:
        """What is paused: `worker.pause.ALL` for the whole queue, else job type names."""
        return await PauseSwitch(self._redis, self._keys).read()

    async def wait(
        self, job_id: str, on_update: Callable[[JobReport], None], poll_s: float = 0.25
    ) -> JobReport:
        """Until the job ends and, for a daily run, every prospect job it fanned out has too."""
        while True:
            report = await self.report(job_id)
            on_update(report)
            if finished(report):
                return report
            await asyncio.sleep(poll_s)


def repeat_note(result: Any) -> str | None:
    """A second daily job of a day joins the day's run (its id is the day), adds no job and
    repeats the run's figures in its result: the words that say so, the same in every command."""
    if not isinstance(result, dict) or result.get("added") != 0 or not result.get("fanned_out"):
        return None
    return (
        f"this job added nothing: the run of {result.get('run_id')} had already fanned out its "
        f"{result['fanned_out']} prospects (an earlier job or try of that day); the figures "
        "below are that run's, not new work"
    )


def _run_id(report: JobReport) -> str | None:
    if isinstance(report.result, dict) and "run_id" in report.result:
        return str(report.result["run_id"])
    if report.progress is not None and "run_id" in report.progress.counters:
        return str(report.progress.counters["run_id"])
    return None
