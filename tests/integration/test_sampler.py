"""The background sampler: figures from a real Redis, and a Redis that does not answer counted
and retried rather than ending the sampler."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from jobs.deps import FanoutJob
from worker.engine.serializer import serialize
from worker.keys import WorkerKeys
from worker.local.embedded import free_port
from worker.observability.http_instrument import OPERATIONS
from worker.observability.job_counts import JobMetrics
from worker.observability.metrics import Metrics
from worker.observability.replicas import read_outcomes, read_replicas
from worker.observability.sampler import Sampler
from worker.runtime.outcomes import JobOutcome
from worker.scheduling.fanout import BulkEnqueuer
from worker.scheduling.pause import PauseSwitch

KEYS = WorkerKeys()
TYPES = ["daily_prospect_queue", "process_prospect"]
SAMPLED_AT = "prospect_worker_queue_sample_timestamp_seconds"


@asynccontextmanager
async def sampler(
    metrics: Metrics, jobs: JobMetrics, url: str, interval_s: float
) -> AsyncIterator[Sampler]:
    queue_redis, redis = Redis.from_url(url), Redis.from_url(url, decode_responses=True)
    try:
        yield Sampler(
            metrics,
            jobs,
            queue_redis=queue_redis,
            redis=redis,
            keys=KEYS,
            queue_name="arq:queue",
            tz=ZoneInfo("UTC"),
            daily_limit=50,
            replica="host:1",
            interval_s=interval_s,
        )
    finally:
        await queue_redis.aclose()
        await redis.aclose()


async def test_a_refresh_publishes_this_replicas_outcomes_once(
    redis_url: str, redis: Redis
) -> None:
    metrics = Metrics(TYPES, OPERATIONS, job_limits={}, max_jobs=50)
    jobs = JobMetrics(metrics)
    jobs.started(job_id="a", function="process_prospect", job_try=1, queue_wait_s=0.1)
    jobs.ended(JobOutcome(job_id="b", function="process_prospect", kind="failed", job_try=3))
    await redis.xadd(KEYS.dead_letters, {"job_id": "b"})
    async with sampler(metrics, jobs, redis_url, interval_s=5) as refresher:
        await refresher.refresh()
        await refresher.refresh()  # nothing new to publish the second time
    sampled_at = metrics.registry.get_sample_value(SAMPLED_AT)
    assert sampled_at is not None
    assert await read_outcomes(redis, KEYS, now_s=sampled_at) == {"process_prospect": {"failed": 1}}
    (replica,) = await read_replicas(redis, KEYS, now_s=sampled_at, ttl_s=15)
    assert replica.in_flight == {"process_prospect": 1}
    assert metrics.registry.get_sample_value("prospect_worker_dead_letter_stream_entries") == 1


async def test_a_redis_that_does_not_answer_is_counted_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics(TYPES, OPERATIONS, job_limits={}, max_jobs=50)
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    errors = "prospect_worker_redis_errors_total"
    async with sampler(metrics, JobMetrics(metrics), closed, 0.01) as refresher:
        task = asyncio.create_task(refresher.run())
        try:
            async with asyncio.timeout(10):
                # The sampler task counts on its own schedule: poll the counter it writes.
                while (  # noqa: ASYNC110
                    metrics.registry.get_sample_value(errors, {"component": "sampler"}) or 0
                ) < 3:
                    await asyncio.sleep(0.01)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert metrics.registry.get_sample_value(SAMPLED_AT) == 0
    # Every failure counted, the repeated warning said once in its interval.
    said = [r for r in caplog.records if r.name == "prospect_worker.sampler"]
    assert len(said) == 1 and said[0].getMessage().startswith("metrics sampler: ConnectionError")


async def test_a_refresh_shows_the_pause_switch_and_each_class_queued(
    redis_url: str, redis: Redis
) -> None:
    metrics = Metrics(TYPES, OPERATIONS, job_limits={}, max_jobs=50)
    paused = "prospect_worker_queue_paused"
    queued = "prospect_worker_queue_jobs"
    enqueuer = BulkEnqueuer(redis, queue_name="arq:queue", serializer=serialize, expires_ms=60_000)
    await enqueuer.enqueue_many(
        [FanoutJob(job_id="p:1", function="process_prospect", payload={}, priority="hot")]
    )
    switch = PauseSwitch(redis, KEYS)
    async with sampler(metrics, JobMetrics(metrics), redis_url, interval_s=5) as refresher:
        await refresher.refresh()
        assert metrics.registry.get_sample_value(paused) == 0
        await switch.pause()
        await refresher.refresh()
        assert metrics.registry.get_sample_value(paused) == 1
        await switch.resume()
        await switch.pause("process_prospect")  # one type paused is not the queue paused
        await refresher.refresh()
        assert metrics.registry.get_sample_value(paused) == 0
    hot = {"job_type": "process_prospect", "priority": "hot", "state": "due"}
    assert metrics.registry.get_sample_value(queued, hot) == 1
    assert metrics.registry.get_sample_value(queued, {**hot, "priority": "maintenance"}) == 0
