"""Progress records: a small hash per job id, readable by anyone while the job runs.

Writes are best effort: a progress record is for people watching, so a Redis blip while writing
one is logged and never fails the job.
"""

import logging
import time
from typing import Any

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from jobs.fencing import check_fence
from jobs.redisreply import reply
from worker.connections import INFRASTRUCTURE_ERRORS
from worker.keys import WorkerKeys

log = logging.getLogger("prospect_worker.progress")

PROGRESS_TTL_S = 7 * 86_400


class ProgressRecord(BaseModel):
    stage: str
    done: int | None = None
    total: int | None = None
    job_try: int | None = None
    counters: dict[str, Any] = {}
    updated_ms: int


class JobProgress:
    """The `Progress` a job body is handed; each update is one HSET."""

    def __init__(self, redis: Redis, keys: WorkerKeys, job_id: str, job_try: int) -> None:
        self._redis = redis
        self._key = keys.progress(job_id)
        self._job_try = job_try
        self._counters: dict[str, Any] = {}

    async def update(
        self, stage: str, *, done: int | None = None, total: int | None = None, **counters: Any
    ) -> None:
        # A step boundary: a job this worker no longer owns stops here (jobs/fencing.py).
        check_fence()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                self.write_on(pipe, stage, done=done, total=total, **counters)
                await pipe.execute()
        except INFRASTRUCTURE_ERRORS as exc:
            log.debug("progress of %s not written (%s)", self._key, type(exc).__name__)

    def write_on(
        self,
        pipe: Pipeline,
        stage: str,
        *,
        done: int | None = None,
        total: int | None = None,
        **counters: Any,
    ) -> None:
        """Queue an update on `pipe`: the runtime sends the `running` stage in the same round
        trip as the type lease it takes."""
        self._counters.update(counters)
        fields: dict[str, str | int] = {
            "stage": stage,
            "job_try": self._job_try,
            "counters": orjson.dumps(self._counters).decode(),
            "updated_ms": int(time.time() * 1000),
        }
        if done is not None:
            fields["done"] = done
        if total is not None:
            fields["total"] = total
        pipe.hset(self._key, mapping=fields)
        pipe.expire(self._key, PROGRESS_TTL_S)


async def read_progress(redis: Redis, keys: WorkerKeys, job_id: str) -> ProgressRecord | None:
    return parse_progress(await reply(redis.hgetall(keys.progress(job_id))))


def parse_progress(raw: dict[str, str]) -> ProgressRecord | None:
    """A progress hash as read (str replies); None for none."""
    if not raw:
        return None
    return ProgressRecord(
        stage=raw["stage"],
        done=int(raw["done"]) if "done" in raw else None,
        total=int(raw["total"]) if "total" in raw else None,
        job_try=int(raw["job_try"]) if "job_try" in raw else None,
        counters=orjson.loads(raw.get("counters", "{}")),
        updated_ms=int(raw["updated_ms"]),
    )
