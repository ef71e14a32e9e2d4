"""Pause and resume, shared by every replica: one hash in Redis (`WorkerKeys.paused`).

The field `*` pauses the whole queue: workers take no job and enqueue no cron job (a tick that
falls in a pause is enqueued once on resume); jobs already running finish. A job type's name
pauses that type alone: its jobs are deferred when they come up (no try spent, no slot held),
the other types run. Each worker reads the hash at most every `REFRESH_S`, so a pause takes
effect within a second. The hash has no TTL on purpose: it is an operator's switch, deleted by
`resume`.
"""

import time

from redis.asyncio import Redis

from jobs.redisreply import reply
from worker.keys import WorkerKeys

ALL = "*"
REFRESH_S = 0.5
PAUSED_RETRY_S = 1.0  # a job of a paused type comes back after this long


class PauseSwitch:
    def __init__(self, redis: Redis, keys: WorkerKeys) -> None:
        self._redis = redis
        self._key = keys.paused

    async def pause(self, job_type: str | None = None) -> None:
        await reply(self._redis.hset(self._key, job_type or ALL, str(int(time.time() * 1000))))

    async def resume(self, job_type: str | None = None) -> None:
        """One type, or (with none) everything: the queue and every paused type."""
        if job_type is None:
            await self._redis.delete(self._key)
        else:
            await reply(self._redis.hdel(self._key, job_type))

    async def read(self) -> frozenset[str]:
        fields = await reply(self._redis.hkeys(self._key))
        return frozenset(field.decode() if isinstance(field, bytes) else field for field in fields)
