"""Where the pipeline's output lands: checkpoints, the approval stream, tracking events.

Queueing a draft is one Lua script: the quota check, the approval entry, the draft record, the
contacted mark, the tracking event and the stored outcome happen together or not at all, so a
job that runs twice (retry, crash, redelivery) still queues its draft exactly once and counts it
once. Streams are not capped on write (a MAXLEN would silently drop entries nobody has seen);
they are trimmed by age (jobs/retention.py).
"""

import time
from collections.abc import Sequence
from typing import Literal, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis

from jobs.fencing import JobLost, check_fence, fence_key_and_token, lua_guard
from jobs.keys import Keys, prospect_job_id
from jobs.models import Draft
from jobs.redisreply import reply
from jobs.retention import StreamRule, trim_streams

CHECKPOINT_TTL_S = 7 * 86_400
QUOTA_TTL_S = 3 * 86_400
DRAFT_TTL_S = 90 * 86_400  # the default of the draft_ttl_days setting

Model = TypeVar("Model", bound=BaseModel)

# The queue step's outcome is stored in the prospect's checkpoint hash by the same script that
# queues the draft, so a retry reads the decision back instead of deciding again (with the
# quota now spent by its own draft, it would decide "quota_reached").
# The suppression check is here too, not only before drafting: an unsubscribe that lands while
# the draft is being written must still keep it out of the approval stream.
# Only a job its run fanned out queues (the run's members): a job of a run Redis lost spends no
# quota and queues nothing, in an empty Redis or in a run of the same day opened since (a run
# opened before runs listed their members takes any job of its id, as it did).
# A worker that no longer owns the job (jobs/fencing.py) is refused before anything is read.
# KEYS: checkpoint, draft, quota, approvals, events, contacted, suppressed addresses,
#       suppressed domains, the run's members, the run hash, the job's fence
# ARGV: company_id, run_id, limit, now_ms, to, subject, body, score, writer,
#       quota_ttl_s, checkpoint_ttl_s, draft_ttl_s, job id, fence token ('' for none)
_QUEUE_DRAFT = (
    lua_guard("KEYS[11]", "ARGV[14]", "{'lost', ''}")
    + """
local checkpoint, draft, quota = KEYS[1], KEYS[2], KEYS[3]
local approvals, events, contacted = KEYS[4], KEYS[5], KEYS[6]
local company, run, limit, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if redis.call('HEXISTS', KEYS[10], 'started_ms') == 0 or (redis.call('HGET', KEYS[10], 'members')
    == '1' and redis.call('SISMEMBER', KEYS[9], ARGV[13]) == 0) then
  return {'refused', ''}
end
local decided = redis.call('HMGET', checkpoint, 'queue_outcome', 'queue_draft_id')
if decided[1] then return {decided[1], decided[2] or ''} end
local outcome, id = 'queued', ''
local existing = redis.call('HMGET', draft, 'stream_id', 'run_id')
local address = string.lower(ARGV[5])
local domain = string.match(address, '@([^@]+)$') or ''
if existing[1] then
  -- This run's own draft (its decision lost with an expired checkpoint) or another run's.
  id = existing[1]
  if existing[2] ~= run then outcome = 'duplicate' end
elseif redis.call('SISMEMBER', KEYS[7], address) == 1
    or redis.call('SISMEMBER', KEYS[8], domain) == 1 then
  outcome = 'suppressed'
elseif redis.call('INCR', quota) > limit then
  redis.call('DECR', quota)
  outcome = 'quota_reached'
else
  id = redis.call('XADD', approvals, '*',
    'company_id', company, 'run_id', run, 'to', ARGV[5], 'subject', ARGV[6], 'body', ARGV[7],
    'score', ARGV[8], 'writer', ARGV[9])
  redis.call('HSET', draft, 'stream_id', id, 'state', 'pending', 'run_id', run,
    'to', ARGV[5], 'subject', ARGV[6], 'body', ARGV[7], 'score', ARGV[8], 'writer', ARGV[9],
    'queued_ms', now)
  redis.call('EXPIRE', draft, ARGV[12])
  redis.call('SADD', contacted, company)
  redis.call('XADD', events, '*', 'type', 'draft_queued',
    'company_id', company, 'run_id', run, 'draft_id', id, 'ts_ms', now)
end
if redis.call('TTL', quota) == -1 then redis.call('EXPIRE', quota, ARGV[10]) end
redis.call('HSET', checkpoint, 'queue_outcome', outcome, 'queue_draft_id', id)
redis.call('EXPIRE', checkpoint, ARGV[11])
return {outcome, id}
"""
)

# "refused": the job is not one its run fanned out; nothing was written.
QueueOutcome = Literal["queued", "duplicate", "quota_reached", "suppressed", "refused"]


def now_ms() -> int:
    return int(time.time() * 1000)


class ProspectStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._queue_draft = redis.register_script(_QUEUE_DRAFT)

    async def load_checkpoint(
        self, run_id: str, company_id: str, stage: str, model: type[Model]
    ) -> Model | None:
        raw = await reply(self._redis.hget(self._keys.prospect(run_id, company_id), stage))
        return None if raw is None else model.model_validate_json(raw)

    async def save_checkpoint(
        self, run_id: str, company_id: str, stage: str, value: BaseModel
    ) -> None:
        check_fence()  # a worker that lost the job leaves its checkpoints to the new owner
        key = self._keys.prospect(run_id, company_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, stage, value.model_dump_json())
            pipe.expire(key, CHECKPOINT_TTL_S)
            await pipe.execute()

    async def queue_draft(
        self,
        *,
        run_id: str,
        company_id: str,
        draft: Draft,
        score: int,
        day: str,
        limit: int,
        draft_ttl_s: int = DRAFT_TTL_S,
    ) -> tuple[QueueOutcome, str | None]:
        """Queue the draft for approval once, counted against `day`'s quota of `limit`.

        Decided once per run and prospect: a second call returns the first call's outcome.
        "refused" (nothing written) when the run did not fan this prospect's job out."""
        keys = self._keys
        checkpoint = keys.prospect(run_id, company_id)
        fence_key, token = fence_key_and_token(checkpoint)
        outcome, entry_id = await self._queue_draft(
            keys=[
                checkpoint,
                keys.draft(company_id),
                keys.quota(day),
                keys.approvals,
                keys.events,
                keys.contacted,
                keys.suppressed_addresses,
                keys.suppressed_domains,
                keys.run_members(run_id),
                keys.run(run_id),
                fence_key,
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
                QUOTA_TTL_S,
                CHECKPOINT_TTL_S,
                draft_ttl_s,
                prospect_job_id(run_id, company_id),
                token,
            ],
        )
        if outcome == "lost":
            raise JobLost(f"queue step of {company_id} refused: the job is no longer ours")
        return outcome, entry_id or None

    async def queue_decision(
        self, run_id: str, company_id: str
    ) -> tuple[QueueOutcome, str | None] | None:
        """What the queue step decided for this prospect in this run, if it ran."""
        outcome, entry_id = await reply(
            self._redis.hmget(
                self._keys.prospect(run_id, company_id), ["queue_outcome", "queue_draft_id"]
            )
        )
        return None if outcome is None else (outcome, entry_id or None)

    async def quota_used(self, day: str) -> int:
        return int(await self._redis.get(self._keys.quota(day)) or 0)

    async def contacted(self, company_ids: list[str]) -> list[bool]:
        if not company_ids:
            return []
        flags = await reply(self._redis.smismember(self._keys.contacted, company_ids))
        return [bool(flag) for flag in flags]

    async def trim_streams(self, rules: Sequence[StreamRule], now_ms: int) -> dict[str, int]:
        return await trim_streams(self._redis, rules, now_ms)
