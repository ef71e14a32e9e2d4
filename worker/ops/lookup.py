"""One job looked up by id, and the jobs running now with their progress.

A job is read through the queue client (`status` reads the same); the jobs running now are the
members of the type leases every running job holds (worker/scheduling/limits.py), live ones
only, so the read is bounded by what runs, never by the queue.
"""

import time
from datetime import UTC, datetime

from pydantic import BaseModel

from worker.client import JobReport
from worker.ops.context import Ops
from worker.registry import job_types
from worker.runtime.progress import ProgressRecord, parse_progress


class JobDetail(JobReport):
    """The job as `status` shows it (state, payload, progress record, result, error, the
    delivery it is on), and what the runtime kept beside it."""

    failed_tries: int  # tries that failed (a cancellation or a lost job spends none)
    dead_letter_id: str | None  # its dead-letter entry, when it ended in one


class InFlightJob(BaseModel):
    job_id: str
    job_type: str
    lease_until: datetime  # renewed while the job runs; a dead worker's lapses
    progress: ProgressRecord | None


async def job_detail(ops: Ops, job_id: str) -> JobDetail:
    report = await ops.client.report(job_id)
    async with ops.redis.pipeline(transaction=False) as pipe:
        pipe.get(ops.keys.tries(job_id))
        pipe.get(ops.keys.dead_letter_marker(job_id))
        tries, entry = await pipe.execute()
    return JobDetail(
        **report.model_dump(), failed_tries=int(tries or 0), dead_letter_id=entry or None
    )


async def in_flight(ops: Ops, limit: int = 100) -> list[InFlightJob]:
    """Up to `limit` running jobs, by type, each with its progress record."""
    now_ms = int(time.time() * 1000)
    types = list(job_types(ops.settings))
    async with ops.redis.pipeline(transaction=False) as pipe:
        for job_type in types:
            pipe.zrangebyscore(
                ops.keys.type_leases(job_type), now_ms, "+inf", start=0, num=limit, withscores=True
            )
        leased = await pipe.execute()
    running = [
        (job_id, job_type, until)
        for job_type, members in zip(types, leased, strict=True)
        for job_id, until in sorted(members)
    ][:limit]
    if not running:
        return []
    async with ops.redis.pipeline(transaction=False) as pipe:
        for job_id, _, _ in running:
            pipe.hgetall(ops.keys.progress(job_id))
        progress = await pipe.execute()
    return [
        InFlightJob(
            job_id=job_id,
            job_type=job_type,
            lease_until=datetime.fromtimestamp(until / 1000, UTC),
            progress=parse_progress(raw),
        )
        for (job_id, job_type, until), raw in zip(running, progress, strict=True)
    ]
