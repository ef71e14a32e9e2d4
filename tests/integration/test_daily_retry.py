"""A retry of the daily run keeps its fan-out count and its choice of prospects."""

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from jobs.deps import Deps, Enqueuer, FanoutJob, FanoutOutcome
from jobs.errors import PermanentError, RunNotOpen
from jobs.models import DailyRunRequest
from jobs.prospecting.daily import daily_prospect_queue
from jobs.prospecting.runs import RunLedger
from jobs.redisreply import reply
from settings import Settings
from worker.app import build_deps
from worker.client import QueueClient
from worker.connections import JOB_EXPIRES_MS
from worker.keys import WorkerKeys
from worker.registry import DAILY_JOB, job_specs
from worker.runtime.deadletter import DeadLetters

from .conftest import drain, make_settings

KEYS = WorkerKeys()


class NoProgress:
    async def update(
        self, stage: str, *, done: int | None = None, total: int | None = None, **counters: Any
    ) -> None:
        return None


class LosesOneReply:
    """Enqueues, then loses the reply of its first call (a blip mid fan-out)."""

    def __init__(self, inner: Enqueuer) -> None:
        self.inner = inner
        self.lost = False

    async def enqueue_many(self, jobs: Sequence[FanoutJob]) -> list[FanoutOutcome]:
        outcomes = await self.inner.enqueue_many(jobs)
        if not self.lost:
            self.lost = True
            raise RedisConnectionError("connection lost after the script ran")
        return outcomes


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url, daily_limit=20)


@pytest.fixture
async def deps(settings: Settings) -> AsyncIterator[Deps]:
    async with AsyncExitStack() as stack:
        deps, _ = await build_deps(settings, stack)
        yield deps


@pytest.mark.slow
async def test_a_retry_whose_jobs_come_back_as_duplicates_keeps_the_total(
    deps: Deps, settings: Settings, redis: Redis
) -> None:
    lossy = replace(deps, enqueuer=LosesOneReply(deps.enqueuer))
    with pytest.raises(RedisConnectionError):
        await daily_prospect_queue(lossy, DailyRunRequest(), NoProgress())
    queued_jobs = await redis.zcard(settings.queue_name)
    assert queued_jobs > 0

    result = await daily_prospect_queue(lossy, DailyRunRequest(), NoProgress())  # the retry

    run = await deps.ledger.summary(result.run_id)
    assert run is not None
    assert run.total == result.fanned_out == queued_jobs
    assert run.state == "running"  # nothing stamped while its jobs wait
    assert "already_fanned_out" not in result.skipped
    await drain(settings)
    run = await deps.ledger.summary(result.run_id)
    assert run is not None and run.state == "complete"
    assert run.done == run.total == queued_jobs


async def test_a_retry_reuses_the_chosen_prospects(deps: Deps, redis: Redis) -> None:
    lossy = replace(deps, enqueuer=LosesOneReply(deps.enqueuer))
    with pytest.raises(RedisConnectionError):
        await daily_prospect_queue(lossy, DailyRunRequest(), NoProgress())
    first_jobs = set(await redis.zrange("arq:queue", 0, -1))
    # Meanwhile some of its jobs ran and contacted their companies.
    contacted = sorted(first_jobs)[:5]
    await reply(redis.sadd(KEYS.contacted, *[job.rsplit(":", 1)[1] for job in contacted]))

    result = await daily_prospect_queue(lossy, DailyRunRequest(), NoProgress())

    assert set(await redis.zrange("arq:queue", 0, -1)) == first_jobs
    assert result.fanned_out == len(first_jobs)


async def test_closing_the_fan_out_twice_counts_its_skips_once(deps: Deps) -> None:
    first = await daily_prospect_queue(deps, DailyRunRequest(), NoProgress())
    before = await deps.ledger.summary(first.run_id)
    second = await daily_prospect_queue(deps, DailyRunRequest(), NoProgress())
    after = await deps.ledger.summary(first.run_id)

    assert before is not None and after is not None
    assert after.skipped == before.skipped
    assert (after.total, after.discovered) == (before.total, before.discovered)
    assert second.fanned_out == first.fanned_out == after.total
    assert second.skipped == first.skipped


async def test_the_bulk_enqueue_counts_each_job_it_adds_once(deps: Deps, redis: Redis) -> None:
    run = KEYS.run("2026-11-22")
    await reply(redis.hset(run, mapping={"started_ms": 1, "total": 0, "finished_ms": 1}))
    jobs = [
        FanoutJob(f"p:{n}", "process_prospect", {"n": n}, claim_key=f"c:{n}", count_key=run)
        for n in range(3)
    ]
    await redis.set("c:2", "another job")  # in flight elsewhere: not added, not counted

    assert await deps.enqueuer.enqueue_many(jobs) == ["added", "added", "claimed"]
    assert await deps.enqueuer.enqueue_many(jobs) == ["duplicate", "duplicate", "claimed"]
    assert await reply(redis.hget(run, "total")) == "2"
    assert await reply(redis.hget(run, "finished_ms")) is None  # the run has jobs to wait for again


class FailsAfterFirstChunk:
    """Adds the first part of the fan-out, then fails for good (a bug, say, on a later part)."""

    def __init__(self, inner: Enqueuer, first: int) -> None:
        self.inner = inner
        self.first = first

    async def enqueue_many(self, jobs: Sequence[FanoutJob]) -> list[FanoutOutcome]:
        await self.inner.enqueue_many(jobs[: self.first])
        raise PermanentError("the fan-out broke after its first part")


@pytest.mark.slow
async def test_a_daily_run_failing_for_good_mid_fan_out_says_failed_not_running(
    settings: Settings, redis: Redis
) -> None:
    def breaks(deps: Deps) -> Deps:
        return replace(deps, enqueuer=FailsAfterFirstChunk(deps.enqueuer, first=4))

    client = await QueueClient.connect(settings, specs=job_specs(settings))
    try:
        job_id = await client.enqueue(DAILY_JOB)
        await drain(settings, adjust_deps=breaks)  # the run's job, then the 4 it fanned out
        report = await client.report(job_id)
    finally:
        await client.close()

    assert report.state == "failed" and report.run is not None
    run = report.run
    assert run.state == "failed" and "fan-out broke" in (run.fanout_error or "")
    assert run.total == run.done == 4  # the jobs it did fan out ran and were counted
    dead_letters = DeadLetters(
        redis, KEYS, queue_name=settings.queue_name, job_expires_ms=JOB_EXPIRES_MS
    )
    (letter,) = await dead_letters.list()
    assert letter.function == DAILY_JOB

    # Replayed and run to the end, the same run closes its fan-out and completes.
    assert await dead_letters.replay(letter) == "replayed"
    await drain(settings)
    summary = await RunLedger(redis, KEYS).summary(run.run_id)
    assert summary is not None and summary.state == "complete" and summary.fanout_error is None
    assert summary.total == summary.done > 4


class EmptiedBeforeFanout:
    """Redis restarts empty (the run's hash gone) between the run's opening and its fan-out."""

    def __init__(self, inner: Enqueuer, redis: Redis) -> None:
        self.inner = inner
        self.redis = redis

    async def enqueue_many(self, jobs: Sequence[FanoutJob]) -> list[FanoutOutcome]:
        await self.redis.flushdb()
        return await self.inner.enqueue_many(jobs)


async def test_a_run_emptied_before_its_fan_out_writes_nothing_and_retries(
    deps: Deps, redis: Redis
) -> None:
    refused: list[str] = []
    emptied = replace(
        deps, enqueuer=EmptiedBeforeFanout(deps.enqueuer, redis), refused=refused.append
    )
    with pytest.raises(RunNotOpen):
        await daily_prospect_queue(emptied, DailyRunRequest(), NoProgress())
    assert await redis.keys("*") == []  # no run, job, claim or count was made
    assert refused == ["fanout"]

    # The runtime's retry opens the run again and fans it out whole.
    result = await daily_prospect_queue(deps, DailyRunRequest(), NoProgress())
    summary = await deps.ledger.summary(result.run_id)
    assert summary is not None and summary.total == result.fanned_out > 0
