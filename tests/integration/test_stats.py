"""`python -m worker stats` and the queue-depth metrics split the queue by priority class, read
from the shift kept beside each job (worker/scheduling/queueorder.py), within the bounded sample."""

import re
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from redis.asyncio import Redis

from jobs.deps import FanoutJob
from jobs.models import Priority
from settings import Settings
from worker.client import QueueClient
from worker.connections import JOB_EXPIRES_MS
from worker.engine.serializer import serialize
from worker.observability.stats_report import Stats, collect_stats, render
from worker.scheduling.fanout import BulkEnqueuer

QUEUE = "arq:queue"


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def fan_out(redis: Redis, prefix: str, count: int, priority: Priority) -> None:
    enqueuer = BulkEnqueuer(
        redis, queue_name=QUEUE, serializer=serialize, expires_ms=JOB_EXPIRES_MS
    )
    await enqueuer.enqueue_many(
        [
            FanoutJob(
                job_id=f"{prefix}:{n}",
                function="process_prospect",
                payload={},
                priority=priority,
                rank=n + 1,
            )
            for n in range(count)
        ]
    )


def depth(stats: Stats) -> dict[tuple[str, str], tuple[int, int]]:
    return {(d.job_type, d.priority): (d.due, d.scheduled) for d in stats.depth}


async def test_stats_show_each_queued_job_under_its_priority_class(
    redis_url: str, redis: Redis, raw: Redis, settings: Settings, client: QueueClient
) -> None:
    await client.enqueue("cleanup", priority="reply")
    await client.enqueue("cleanup", defer_s=3_600)  # no class named: the maintenance level
    await fan_out(redis, "prospect:hot", 3, "hot")
    await fan_out(redis, "prospect:cold", 2, "cold")
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )
    assert await pool.enqueue_job("cleanup") is not None  # a plain arq client: maintenance
    await pool.aclose()

    # A second on: arq rounds its enqueue time, which may land a millisecond ahead of ours.
    stats = await collect_stats(settings, queue_redis=raw, redis=redis, now_s=time.time() + 1)

    assert stats.depth_exact
    assert depth(stats) == {
        ("daily_prospect_queue", "-"): (0, 0),
        ("process_prospect", "hot"): (3, 0),
        ("process_prospect", "cold"): (2, 0),
        ("cleanup", "reply"): (1, 0),
        ("cleanup", "maintenance"): (1, 1),
        ("send_outreach", "-"): (0, 0),
        ("process_reply", "-"): (0, 0),
        ("unknown", "-"): (0, 0),
    }
    table = render(stats)
    assert re.search(r"process_prospect +hot +3 +0", table), table
    assert re.search(r"cleanup +reply +1 +0", table), table


async def test_a_large_queue_is_split_by_class_from_the_sample(
    redis: Redis, raw: Redis, settings: Settings
) -> None:
    await fan_out(redis, "prospect:hot", 600, "hot")
    await fan_out(redis, "prospect:warm", 600, "warm")

    stats = await collect_stats(settings, queue_redis=raw, redis=redis)

    assert not stats.depth_exact
    rows = depth(stats)
    hot, warm = rows[("process_prospect", "hot")], rows[("process_prospect", "warm")]
    assert hot[0] + warm[0] == stats.due == 1_200  # scaled to the exact total
    # Every hot job is scored a step ahead of every warm one: the stratified sample sees both.
    assert abs(hot[0] - 600) <= 60
