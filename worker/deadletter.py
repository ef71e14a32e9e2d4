"""The dead-letter stream: jobs that failed for good, kept with payload and error for replay."""

import time
from typing import Any

import orjson
from redis.asyncio import Redis

from jobs.keys import Keys

DEAD_LETTER_MAXLEN = 100_000


async def add_dead_letter(
    redis: Redis,
    keys: Keys,
    *,
    job_id: str,
    function: str,
    payload: Any,
    error: str,
    tries: int,
) -> str:
    entry_id: str = await redis.xadd(
        keys.dead_letters,
        {
            "job_id": job_id,
            "function": function,
            "payload": orjson.dumps(payload, default=str).decode(),
            "error": error[:2000],
            "tries": tries,
            "failed_ms": int(time.time() * 1000),
        },
        maxlen=DEAD_LETTER_MAXLEN,
        approximate=True,
    )
    return entry_id
