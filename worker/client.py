"""The operator's side of the queue: enqueue by name, read a job's state, wait for a daily run."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from arq.connections import ArqRedis, create_pool
from arq.jobs import Job, JobStatus
from pydantic import BaseModel
from redis.asyncio import Redis

from jobs.deps import Priority
from jobs.keys import Keys
from jobs.models import RunSummary
from jobs.runs import RunLedger
from settings import Settings
from worker.app import JOB_EXPIRES_MS, redis_client, redis_settings
from worker.progress import ProgressRecord, read_progress
from worker.queueorder import PriorityScale
from worker.registry import job_specs
from worker.serializer import deserialize, serialize

State = Literal["queued", "deferred", "in_progress", "complete", "failed", "not_found"]


class UnknownJob(Exception):
    """An enqueue named no job this worker runs."""


class JobReport(BaseModel):
    job_id: str
    function: str | None = None
    state: State
    job_try: int | None = None
    progress: ProgressRecord | None = None
    result: Any = None
    error: str | None = None
    run: RunSummary | None = None  # for a daily run: the tally of its per-prospect jobs


class QueueClient:
    def __init__(self, settings: Settings, arq: ArqRedis, redis: Redis) -> None:
        self._settings = settings
        self._arq = arq
        self._redis = redis
        self._keys = Keys(settings.key_prefix)
        self._ledger = RunLedger(redis, self._keys)

    @classmethod
    async def connect(cls, settings: Settings) -> "QueueClient":
        arq = await create_pool(
            redis_settings(settings),
            job_serializer=serialize,
            job_deserializer=deserialize,
            default_queue_name=settings.queue_name,
        )
        return cls(settings, arq, redis_client(settings))

    @property
    def redis(self) -> Redis:
        return self._redis

    async def close(self) -> None:
        await self._arq.aclose()
        await self._redis.aclose()

    async def enqueue(
        self,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        priority: Priority | None = None,
    ) -> str:
        """Enqueue by name, with arq's own call. A priority scores the job ahead of now by its
        class (worker/queueorder.py) and keeps its shift beside it, so a retry keeps the class;
        none is the maintenance level, as for any plain arq client."""
        known = job_specs(self._settings)
        if name not in known:
            raise UnknownJob(f"unknown job {name!r}; known jobs: {', '.join(sorted(known))}")
        shift_ms = PriorityScale(self._settings.priority_step_s).shift_ms(priority or "maintenance")
        scored = datetime.now(UTC) - timedelta(milliseconds=shift_ms) if shift_ms else None
        job = await self._arq.enqueue_job(
            name,
            *([payload] if payload else []),
            _defer_until=scored,
            _expires=timedelta(milliseconds=JOB_EXPIRES_MS),
        )
        assert job is not None  # noqa: S101 - for the type: only a caller-chosen _job_id collides
        if shift_ms:
            await self._redis.set(self._keys.priority(job.job_id), shift_ms, px=JOB_EXPIRES_MS)
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
        return report

    async def wait(
        self, job_id: str, on_update: Callable[[JobReport], None], poll_s: float = 0.25
    ) -> JobReport:
        """Until the job ends and, for a daily run, every prospect job it fanned out has too."""
        while True:
            report = await self.report(job_id)
            on_update(report)
            if report.state in ("failed", "not_found"):
                return report
            if report.state == "complete" and (
                report.run is None or report.run.state == "complete"
            ):
                return report
            await asyncio.sleep(poll_s)


def _run_id(report: JobReport) -> str | None:
    if isinstance(report.result, dict) and "run_id" in report.result:
        return str(report.result["run_id"])
    if report.progress is not None and "run_id" in report.progress.counters:
        return str(report.progress.counters["run_id"])
    return None
