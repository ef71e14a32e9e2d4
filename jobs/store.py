"""Where the pipeline's output lands: checkpoints, the approval stream, tracking events.

Queueing a draft is one Lua script: the quota check, the approval entry, the draft record, the
contacted mark and the tracking event happen together or not at all, so a job that runs twice
(retry, crash, redelivery) still queues its draft exactly once and counts it once.
"""

import time
from typing import Literal, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from jobs.keys import Keys
from jobs.models import Draft

STREAM_MAXLEN = 100_000
CHECKPOINT_TTL_S = 7 * 86_400
QUOTA_TTL_S = 3 * 86_400

Model = TypeVar("Model", bound=BaseModel)

# KEYS: draft, quota, approvals, events, contacted
# ARGV: company_id, run_id, limit, now_ms, to, subject, body, score, writer
# %-formatted: str.format would need every brace of the Lua tables doubled.
_QUEUE_DRAFT = """
local draft, quota, approvals, events, contacted = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local company, run, limit, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local existing = redis.call('HGET', draft, 'stream_id')
if existing then return {'duplicate', existing} end
local used = redis.call('INCR', quota)
redis.call('EXPIRE', quota, %(quota_ttl)d)
if used > limit then
  redis.call('DECR', quota)
  return {'quota_reached', ''}
end
local id = redis.call('XADD', approvals, 'MAXLEN', '~', %(maxlen)d, '*',
  'company_id', company, 'run_id', run, 'to', ARGV[5], 'subject', ARGV[6], 'body', ARGV[7],
  'score', ARGV[8], 'writer', ARGV[9])
redis.call('HSET', draft, 'stream_id', id, 'status', 'pending_approval', 'run_id', run,
  'to', ARGV[5], 'subject', ARGV[6], 'body', ARGV[7], 'score', ARGV[8], 'writer', ARGV[9],
  'queued_ms', now)
redis.call('SADD', contacted, company)
redis.call('XADD', events, 'MAXLEN', '~', %(maxlen)d, '*', 'type', 'draft_queued',
  'company_id', company, 'run_id', run, 'draft_id', id, 'ts_ms', now)
return {'queued', id}
""" % {"quota_ttl": QUOTA_TTL_S, "maxlen": STREAM_MAXLEN}  # noqa: UP031

QueueOutcome = Literal["queued", "duplicate", "quota_reached"]


def now_ms() -> int:
    return int(time.time() * 1000)


class ProspectStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._queue_draft = redis.register_script(_QUEUE_DRAFT)

    @property
    def scripts(self) -> tuple[AsyncScript, ...]:
        return (self._queue_draft,)

    async def load_checkpoint(
        self, run_id: str, company_id: str, stage: str, model: type[Model]
    ) -> Model | None:
        key = self._keys.prospect(run_id, company_id)
        # redis-py types the command's reply Awaitable[T] | T, which mypy cannot await.
        raw = await self._redis.hget(key, stage)  # type: ignore[misc]
        return None if raw is None else model.model_validate_json(raw)

    async def save_checkpoint(
        self, run_id: str, company_id: str, stage: str, value: BaseModel
    ) -> None:
        key = self._keys.prospect(run_id, company_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, stage, value.model_dump_json())
            pipe.expire(key, CHECKPOINT_TTL_S)
            await pipe.execute()

    async def queue_draft(
        self, *, run_id: str, company_id: str, draft: Draft, score: int, day: str, limit: int
    ) -> tuple[QueueOutcome, str | None]:
        keys = self._keys
        outcome, entry_id = await self._queue_draft(
            keys=[
                keys.draft(company_id),
                keys.quota(day),
                keys.approvals,
                keys.events,
                keys.contacted,
            ],
            args=[
                company_id,
                run_id,
                limit,
                now_ms(),
                draft.to,
                draft.subject,
                draft.body,
                score,
                draft.writer,
            ],
        )
        return outcome, entry_id or None

    async def quota_used(self, day: str) -> int:
        return int(await self._redis.get(self._keys.quota(day)) or 0)

    async def contacted(self, company_ids: list[str]) -> list[bool]:
        if not company_ids:
            return []
        key = self._keys.contacted
        # redis-py types the command's reply Awaitable[T] | T, which mypy cannot await.
        flags = await self._redis.smismember(key, company_ids)  # type: ignore[misc]
        return [bool(flag) for flag in flags]

    async def track(self, event: str, **fields: str | int) -> None:
        await self._redis.xadd(
            self._keys.events,
            {"type": event, **{k: str(v) for k, v in fields.items()}, "ts_ms": now_ms()},
            maxlen=STREAM_MAXLEN,
            approximate=True,
        )

    async def release_claim(self, company_id: str) -> None:
        await self._redis.delete(self._keys.claim(company_id))
