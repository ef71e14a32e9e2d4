"""What each replica shares through Redis for `python -m worker stats` and the console: its jobs
in flight, and its job outcomes in per-minute buckets (worker/observability/minute_counts.py).

The sampler publishes once per refresh, not once per job, so a job pays no extra round trip.
A replica that stops publishing drops out after `ttl_s`. The key names sit here rather than in
jobs/keys.py because only the engine reads or writes them.
"""

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis

from worker.keys import WorkerKeys
from worker.observability.minute_counts import (
    BUCKET_S,
    Tally,
    outcome_counts,
    queue_tally,
    read_counts,
    summed,
)

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
    outcomes: Tally,
    now_s: float,
    ttl_s: float,
) -> None:
    snapshot = ReplicaSnapshot(replica=replica, seen_ts=now_s, in_flight=in_flight)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(keys.worker(replica), snapshot.model_dump_json(), px=int(ttl_s * 1000))
        pipe.zadd(keys.workers, {replica: now_s})
        pipe.zremrangebyscore(keys.workers, "-inf", now_s - ttl_s)
        # Every publish renews it: the set goes once the last replica stops.
        pipe.pexpire(keys.workers, int(ttl_s * 1000))
        queue_tally(pipe, keys, outcomes, now_s=now_s)
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
    minutes = range(last - window_s // BUCKET_S + 1, last + 1)
    return outcome_counts(summed(await read_counts(redis, [keys.outcomes(m) for m in minutes])))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
