"""What each replica shares through Redis for `python -m worker stats`: its jobs in flight, and
its job outcomes in per-minute buckets.

The sampler publishes once per refresh, not once per job, so a job pays no extra round trip.
A replica that stops publishing drops out after `ttl_s`. The key names sit here rather than in
jobs/keys.py because only the engine reads or writes them.
"""

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis

from jobs.keys import Keys
from worker.runtime.outcomes import OutcomeKind

BUCKET_S = 60
BUCKET_TTL_S = 2 * 3600
WINDOW_S = 3600


def workers_key(keys: Keys) -> str:
    """Sorted set with a TTL: replica name -> unix time it last published."""
    return f"{keys.prefix}:workers"


def worker_key(keys: Keys, replica: str) -> str:
    """String with a TTL: the replica's latest snapshot (JSON)."""
    return f"{keys.prefix}:worker:{replica}"


def outcomes_key(keys: Keys, bucket: int) -> str:
    """Hash with a TTL: "<job type>:<outcome>" -> count, for one minute (unix time // 60)."""
    return f"{keys.prefix}:outcomes:{bucket}"


class ReplicaSnapshot(BaseModel):
    replica: str
    seen_ts: float
    in_flight: dict[str, int]


async def publish(
    redis: Redis,
    keys: Keys,
    *,
    replica: str,
    in_flight: dict[str, int],
    outcomes: dict[tuple[str, OutcomeKind], int],
    now_s: float,
    ttl_s: float,
) -> None:
    snapshot = ReplicaSnapshot(replica=replica, seen_ts=now_s, in_flight=in_flight)
    bucket = outcomes_key(keys, int(now_s // BUCKET_S))
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(worker_key(keys, replica), snapshot.model_dump_json(), px=int(ttl_s * 1000))
        pipe.zadd(workers_key(keys), {replica: now_s})
        pipe.zremrangebyscore(workers_key(keys), "-inf", now_s - ttl_s)
        # Every publish renews it: the set goes once the last replica stops.
        pipe.pexpire(workers_key(keys), int(ttl_s * 1000))
        for (job_type, kind), count in outcomes.items():
            pipe.hincrby(bucket, f"{job_type}:{kind}", count)
        if outcomes:
            pipe.expire(bucket, BUCKET_TTL_S)
        await pipe.execute()


async def read_replicas(
    redis: Redis, keys: Keys, *, now_s: float, ttl_s: float
) -> list[ReplicaSnapshot]:
    names = await redis.zrangebyscore(workers_key(keys), now_s - ttl_s, "+inf")
    if not names:
        return []
    raw = await redis.mget([worker_key(keys, _text(name)) for name in names])
    return [ReplicaSnapshot.model_validate(orjson.loads(item)) for item in raw if item]


async def read_outcomes(
    redis: Redis, keys: Keys, *, now_s: float, window_s: int = WINDOW_S
) -> dict[str, dict[str, int]]:
    """Outcomes of the last `window_s` across every replica: job type -> outcome -> count."""
    last = int(now_s // BUCKET_S)
    async with redis.pipeline(transaction=False) as pipe:
        for bucket in range(last - window_s // BUCKET_S + 1, last + 1):
            pipe.hgetall(outcomes_key(keys, bucket))
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
