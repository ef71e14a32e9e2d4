"""What each replica shares through Redis for `python -m worker stats`: its jobs in flight, and
its job outcomes in per-minute buckets.

The sampler publishes once per refresh, not once per job, so a job pays no extra round trip.
A replica that stops publishing drops out after `ttl_s`. The key names sit here rather than in
jobs/keys.py because only the engine reads or writes them.
"""

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis

from worker.keys import WorkerKeys
from worker.runtime.outcomes import OutcomeKind

BUCKET_S = 60
BUCKET_TTL_S = 2 * 3600
WINDOW_S = 3600


class ReplicaSnapshot(BaseModel):
    replica: str
    seen_ts: float
    in_flight: dict[str, int]


async def publish(
    redis: Redis,
    keys: WorkerKeys,
    *,
    replica: str,
    in_flight: dict[str, int],
    outcomes: dict[tuple[str, OutcomeKind], int],
    now_s: float,
    ttl_s: float,
) -> None:
    snapshot = ReplicaSnapshot(replica=replica, seen_ts=now_s, in_flight=in_flight)
    bucket = keys.outcomes(int(now_s // BUCKET_S))
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(keys.worker(replica), snapshot.model_dump_json(), px=int(ttl_s * 1000))
        pipe.zadd(keys.workers, {replica: now_s})
        pipe.zremrangebyscore(keys.workers, "-inf", now_s - ttl_s)
        # Every publish renews it: the set goes once the last replica stops.
        pipe.pexpire(keys.workers, int(ttl_s * 1000))
        for (job_type, kind), count in outcomes.items():
            pipe.hincrby(bucket, f"{job_type}:{kind}", count)
        if outcomes:
            pipe.expire(bucket, BUCKET_TTL_S)
        await pipe.execute()


async def read_replicas(
    redis: Redis, keys: WorkerKeys, *, now_s: float, ttl_s: float
) -> list[ReplicaSnapshot]:
    names = await redis.zrangebyscore(keys.workers, now_s - ttl_s, "+inf")
    if not names:
        return []
    raw = await redis.mget([keys.worker(_text(name)) for name in names])
    return [ReplicaSnapshot.model_validate(orjson.loads(item)) for item in raw if item]


async def read_outcomes(
    redis: Redis, keys: WorkerKeys, *, now_s: float, window_s: int = WINDOW_S
) -> dict[str, dict[str, int]]:
    """Outcomes of the last `window_s` across every replica: job type -> outcome -> count."""
    last = int(now_s // BUCKET_S)
    async with redis.pipeline(transaction=False) as pipe:
        for bucket in range(last - window_s // BUCKET_S + 1, last + 1):
            pipe.hgetall(keys.outcomes(bucket))
        buckets = await pipe.execute()
    totals: dict[str, dict[str, int]] = {}
    for bucket in buckets:
        for field, count in bucket.items():
            job_type, _, kind = _text(field).rpartition(":")
            per_type = totals.setdefault(job_type, {})
            per_type[kind] = per_type.get(kind, 0) + int(count)
    return totals


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
