"""Every key the pipeline writes has a bounded life or a documented retention rule."""

import time

import pytest
from redis.asyncio import Redis

from jobs.retention import StreamRule, min_id, stream_rules, trim_streams
from settings import Settings
from worker.client import QueueClient
from worker.keys import WorkerKeys
from worker.registry import CLEANUP_JOB, DAILY_JOB, job_specs

from .conftest import drain, make_settings

KEYS = WorkerKeys()
DAY_S = 86_400

# Kept on purpose, each by its own rule: the contacted set is the do-not-prospect-again list
# (it grows by at most the daily limit a day); the streams are trimmed by age
# (jobs/retention.py), the dead letters by replay or an operator's purge.
NO_TTL = {KEYS.contacted, KEYS.approvals, KEYS.events, KEYS.dead_letters}


@pytest.mark.slow
async def test_after_a_run_every_key_expires_or_has_a_rule(
    client: QueueClient, settings: Settings, redis: Redis
) -> None:
    await client.enqueue(DAILY_JOB)
    await drain(settings)

    unbounded = []
    drafts = 0
    async for key in redis.scan_iter(f"{KEYS.prefix}:*"):
        ttl = await redis.ttl(key)
        if key.startswith(f"{KEYS.prefix}:draft:"):
            drafts += 1
            assert settings.draft_ttl_days * DAY_S - 60 <= ttl <= settings.draft_ttl_days * DAY_S
        if ttl < 0 and key not in NO_TTL:
            unbounded.append(key)
    assert drafts == settings.daily_limit
    assert unbounded == []


def test_min_id_is_the_cutoff_in_stream_id_form() -> None:
    assert min_id(now_ms=10_000_000, max_age_s=3_600) == "6400000-0"
    assert min_id(now_ms=1_000, max_age_s=3_600) == "0-0"


def test_the_pipelines_streams_and_their_ages() -> None:
    rules = stream_rules(KEYS, draft_ttl_s=90 * DAY_S, events_ttl_s=30 * DAY_S)
    assert rules == (
        StreamRule(KEYS.approvals, 90 * DAY_S),
        StreamRule(KEYS.events, 30 * DAY_S),
    )


async def test_trimming_by_age_drops_only_older_entries_and_counts_them(redis: Redis) -> None:
    now_ms = int(time.time() * 1000)
    for age_s in (40 * DAY_S, 31 * DAY_S, 29 * DAY_S, 1):
        await redis.xadd(KEYS.events, {"type": "x"}, id=f"{now_ms - age_s * 1000}-0")
    await redis.xadd(KEYS.approvals, {"company_id": "c1"}, id=f"{now_ms - 91 * DAY_S * 1000}-0")
    await redis.xadd(KEYS.approvals, {"company_id": "c2"})

    trimmed = await trim_streams(
        redis, stream_rules(KEYS, draft_ttl_s=90 * DAY_S, events_ttl_s=30 * DAY_S), now_ms
    )

    assert trimmed == {KEYS.approvals: 1, KEYS.events: 2}
    assert await redis.xlen(KEYS.events) == 2
    [(_, kept)] = await redis.xrange(KEYS.approvals)
    assert kept == {"company_id": "c2"}
    # A stream that does not exist yet is nothing to trim.
    assert await trim_streams(redis, (StreamRule("pw:stream:none", 1),), now_ms) == {
        "pw:stream:none": 0
    }


async def test_the_cleanup_job_trims_streams_by_age_through_a_real_worker(
    redis_url: str, redis: Redis
) -> None:
    settings = make_settings(redis_url, event_retention_days=1)
    keys = WorkerKeys()
    old = int(time.time() * 1000) - 2 * 86_400_000
    await redis.xadd(keys.events, {"type": "old"}, id=f"{old}-0")
    await redis.xadd(keys.events, {"type": "new"})
    await redis.xadd(keys.dead_letters, {"job_id": "kept"}, id=f"{old}-0")
    client = await QueueClient.connect(settings, specs=job_specs(settings))
    try:
        job_id = await client.enqueue(CLEANUP_JOB)
        await drain(settings)
        report = await client.report(job_id)
    finally:
        await client.close()
    assert report.state == "complete"
    assert report.result == {"trimmed": {keys.approvals: 0, keys.events: 1}}
    assert [f["type"] for _, f in await redis.xrange(keys.events)] == ["new"]
    assert await redis.xlen(keys.dead_letters) == 1  # dead letters leave by replay or purge only
