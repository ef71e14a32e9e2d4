"""Waiting on a daily run from outside the worker, as an operator's script would."""

import asyncio
import time
from typing import Any

import orjson
from arq import create_pool
from arq.connections import RedisSettings
from redis.asyncio import Redis

from jobs.keys import Keys, prospect_job_id
from jobs.models import Draft, RunSummary
from jobs.prospecting.runs import RunLedger
from jobs.prospecting.store import ProspectStore
from worker.connections import JOB_EXPIRES_MS
from worker.engine.serializer import serialize
from worker.keys import WorkerKeys
from worker.scheduling.fanout import BulkEnqueuer
from worker.scheduling.queueorder import PriorityScale


async def wait_for_run(
    redis: Redis, run_id: str, timeout_s: float = 120, keys: Keys | None = None
) -> RunSummary:
    """The run's summary once it is complete; fails with the last summary seen on timeout."""
    ledger = RunLedger(redis, keys or Keys())
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (summary := await ledger.summary(run_id)) is None or summary.state != "complete":
        assert asyncio.get_running_loop().time() < deadline, summary
        await asyncio.sleep(0.1)
    return summary


async def trigger_daily_run(redis_url: str, timeout_s: float = 120) -> dict[str, Any]:
    """Enqueue the daily run from a plain arq client (JSON, as the worker reads it); the run's
    fan-out result (`run_id`, `fanned_out`) once a worker has returned it."""
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )
    try:
        job = await pool.enqueue_job("daily_prospect_queue")
        assert job is not None
        result: dict[str, Any] = await job.result(timeout=timeout_s, poll_delay=0.05)
    finally:
        await pool.aclose()
    return result


async def start_daily_run(redis_url: str, timeout_s: float = 120) -> str:
    """The id of a daily run enqueued as `trigger_daily_run` does, once it has fanned out."""
    return str((await trigger_daily_run(redis_url, timeout_s))["run_id"])


async def wait_until_done(
    redis: Redis, run_id: str, done: int, timeout_s: float = 120, keys: Keys | None = None
) -> RunSummary:
    """The run's summary once at least `done` of its jobs have ended; fails with the last
    summary seen on timeout."""
    ledger = RunLedger(redis, keys or Keys())
    deadline = time.monotonic() + timeout_s
    while (summary := await ledger.summary(run_id)) is None or summary.done < done:
        assert time.monotonic() < deadline, summary
        await asyncio.sleep(0.05)
    return summary


async def open_run(
    redis: Redis, run_id: str, *company_ids: str, keys: Keys | None = None, closed: bool = True
) -> None:
    """A run as its fan-out leaves it, with these prospects as its own jobs (none enqueued):
    for tests that call a prospect job's steps directly."""
    keys = keys or Keys()
    await RunLedger(redis, keys).open(run_id, int(time.time() * 1000))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(keys.run(run_id), "total", len(company_ids))
        if closed:
            pipe.hset(keys.run(run_id), "fanout_closed", "1")
        if company_ids:
            pipe.sadd(keys.run_members(run_id), *(prospect_job_id(run_id, c) for c in company_ids))
        await pipe.execute()


async def queued_drafts(redis: Redis, count: int = 1, *, keys: Keys | None = None) -> list[str]:
    """Pending drafts d1, d2, ... of run `r`, queued for approval as the prospect job queues
    them (no company or evidence beside them: a real run gives those)."""
    keys = keys or Keys()
    ids = [f"d{n}" for n in range(1, count + 1)]
    await open_run(redis, "r", *ids, keys=keys)
    store = ProspectStore(redis, keys)
    for number, draft_id in enumerate(ids, 1):
        draft = Draft(to=f"p{number}@one.example", subject="Hello", body="Hi.", writer="template")
        outcome, _ = await store.queue_draft(
            run_id="r", company_id=draft_id, draft=draft, score=70, day="d", limit=100
        )
        assert outcome == "queued"
    return ids


def project_enqueuer(redis: Redis, step_s: float = 600.0) -> BulkEnqueuer:
    """The daily job's fan-out on arq's default queue: the bulk enqueuer with the project's
    keys and priorities, `step_s` apart per class."""
    return BulkEnqueuer(
        redis,
        queue_name="arq:queue",
        serializer=serialize,
        expires_ms=JOB_EXPIRES_MS,
        keys=WorkerKeys(),
        scale=PriorityScale(step_s),
    )
