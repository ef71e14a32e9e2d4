"""Queue depth from a real queue: exact when small, a stratified sample scaled to exact totals
when large; unreadable and unknown entries counted under "unknown", never breaking the sample."""

import time

from redis.asyncio import Redis

from jobs.deps import FanoutJob
from worker.engine.serializer import serialize
from worker.observability.queue_depth import sample_queue
from worker.runtime.outcomes import UNKNOWN_FUNCTION
from worker.scheduling.fanout import BulkEnqueuer

QUEUE = "arq:queue"
TYPES = ("daily_prospect_queue", "process_prospect", UNKNOWN_FUNCTION)


async def fill(redis_url: str, counts: dict[str, int]) -> None:
    """Enqueue in arq's own format, the job types interleaved as a fan-out would."""
    redis = Redis.from_url(redis_url)
    enqueuer = BulkEnqueuer(redis, queue_name=QUEUE, serializer=serialize, expires_ms=3_600_000)
    jobs = [
        FanoutJob(job_id=f"{name}:{i}", function=name, payload={})
        for name, count in counts.items()
        for i in range(count)
    ]
    jobs.sort(key=lambda job: int(job.job_id.rsplit(":", 1)[1]))
    await enqueuer.enqueue_many(jobs)
    await redis.aclose()


async def test_a_small_queue_is_counted_exactly(redis_url: str) -> None:
    await fill(redis_url, {"process_prospect": 30, "daily_prospect_queue": 2})
    raw = Redis.from_url(redis_url)
    now_ms = int(time.time() * 1000)
    # Two deferred jobs (a retry's delay), one unknown function, one job id that is not UTF-8
    # with no job record at all.
    await raw.zadd(QUEUE, {b"process_prospect:0": now_ms + 60_000, b"later": now_ms + 60_000})
    await raw.set("arq:job:later", serialize({"f": "process_prospect", "a": [], "k": {}}))
    await raw.zadd(QUEUE, {b"\xff\xfe": now_ms - 5_000, b"mystery": now_ms})
    await raw.set("arq:job:mystery", serialize({"f": "rm -rf", "a": [], "k": {}}))
    figures = await sample_queue(raw, QUEUE, TYPES, now_ms=now_ms + 1)
    await raw.aclose()
    assert figures.exact
    assert (figures.due, figures.scheduled) == (33, 2)
    assert figures.by_type["due"] == {
        "process_prospect": 29,
        "daily_prospect_queue": 2,
        UNKNOWN_FUNCTION: 2,
    }
    assert figures.by_type["scheduled"] == {"process_prospect": 2}
    # No priority shift kept beside these jobs: all at the maintenance level.
    assert figures.by_priority["scheduled"] == {"process_prospect": {"maintenance": 2}}
    assert 5.0 <= figures.oldest_due_age_s < 6.0


async def test_a_large_queue_is_sampled_and_scaled_to_exact_totals(redis_url: str) -> None:
    await fill(redis_url, {"process_prospect": 3_000, "daily_prospect_queue": 1_000})
    raw = Redis.from_url(redis_url)
    now_ms = int(time.time() * 1000)
    deferred = {f"process_prospect:{i}".encode(): now_ms + 60_000 for i in range(0, 3_000, 3)}
    await raw.zadd(QUEUE, deferred)
    figures = await sample_queue(raw, QUEUE, TYPES, now_ms=now_ms + 1, sample_size=200)
    await raw.aclose()
    assert not figures.exact
    assert (figures.due, figures.scheduled) == (3_000, 1_000)
    assert sum(figures.by_type["due"].values()) == 3_000
    assert figures.by_type["scheduled"] == {"process_prospect": 1_000}
    # Due: 2,000 prospect jobs and 1,000 daily runs, interleaved: the sample sees the mix.
    assert abs(figures.by_type["due"]["process_prospect"] - 2_000) <= 100
    assert abs(figures.by_type["due"]["daily_prospect_queue"] - 1_000) <= 100


async def test_an_empty_queue(redis_url: str) -> None:
    raw = Redis.from_url(redis_url)
    figures = await sample_queue(raw, QUEUE, TYPES, now_ms=int(time.time() * 1000))
    await raw.aclose()
    assert figures.model_dump() == {
        "due": 0,
        "scheduled": 0,
        "by_type": {"due": {}, "scheduled": {}},
        "by_priority": {"due": {}, "scheduled": {}},
        "oldest_due_age_s": 0.0,
        "exact": True,
        "parked": {"daily_prospect_queue": 0, "process_prospect": 0},
    }
