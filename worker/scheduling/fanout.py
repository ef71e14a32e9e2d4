"""Bulk enqueue for fan-out: one Redis round trip per chunk instead of one per job.

Writes jobs in arq's own format (job key + queue sorted set), so arq workers run them as if
`enqueue_job` had. One Lua script per chunk makes each job's checks and writes atomic: a job id
that already has a job or result key is a duplicate, and a claim key already held means another
run has this prospect in flight. A job added is counted in its run's hash (`total`) and listed
among its members by the same script, so the count is exact however often the fan-out is
retried: a retry's duplicates are jobs the count already holds. A run whose hash is not open
(Redis lost it) gets nothing; a result left by a job that is not a member (of the run Redis
lost) does not stop the run's own job from being added. Each job is scored by its priority
class and rank (worker/scheduling/queueorder.py), and its shift kept beside it so a retry keeps
its class.
"""

import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis

from jobs.deps import FanoutJob, FanoutOutcome
from worker.engine.arqjobs import JOB_KEY_PREFIX, RESULT_KEY_PREFIX
from worker.keys import WorkerKeys
from worker.scheduling.queueorder import PriorityScale

CHUNK = 500

# KEYS: queue, then per job: job key, result key, claim key, count key ('' when none),
#       members key ('' when none), priority key
# ARGV: expires_ms, the wake-up channel, then per job: job id, serialized job, score, shift
_ENQUEUE = """
local queue = KEYS[1]
local expires = ARGV[1]
local outcomes = {}
for i = 0, (#KEYS - 1) / 6 - 1 do
  local job_key, result_key = KEYS[2 + i * 6], KEYS[3 + i * 6]
  local claim_key, count_key = KEYS[4 + i * 6], KEYS[5 + i * 6]
  local members_key, priority_key = KEYS[6 + i * 6], KEYS[7 + i * 6]
  local job_id, body = ARGV[3 + i * 4], ARGV[4 + i * 4]
  local score, shift = ARGV[5 + i * 4], ARGV[6 + i * 4]
  if count_key ~= '' and redis.call('HEXISTS', count_key, 'started_ms') == 0 then
    outcomes[#outcomes + 1] = 'unopened'
  else
    if members_key ~= '' and redis.call('HGET', count_key, 'members') == '1'
       and redis.call('SISMEMBER', members_key, job_id) == 0
       and redis.call('EXISTS', job_key) == 0 then
      -- A result with no membership was left by a job of a run Redis lost: not this run's.
      redis.call('DEL', result_key)
    end
    if redis.call('EXISTS', job_key, result_key) > 0 then
      outcomes[#outcomes + 1] = 'duplicate'
    elseif claim_key ~= '' and not redis.call('SET', claim_key, job_id, 'NX', 'PX', expires) then
      outcomes[#outcomes + 1] = 'claimed'
    else
      redis.call('SET', job_key, body, 'PX', expires)
      redis.call('ZADD', queue, score, job_id)
      if shift ~= '0' then
        redis.call('SET', priority_key, shift, 'PX', expires)
      end
      if count_key ~= '' then
        -- One more job to wait for: a finish stamped before this job existed is not one.
        redis.call('HINCRBY', count_key, 'total', 1)
        redis.call('HDEL', count_key, 'finished_ms')
      end
      if members_key ~= '' then
        redis.call('SADD', members_key, job_id)
        local ttl = count_key ~= '' and redis.call('PTTL', count_key) or -1
        if ttl > 0 then redis.call('PEXPIRE', members_key, ttl) end
      end
      outcomes[#outcomes + 1] = 'added'
    end
  end
end
if #outcomes > 0 and ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[2], 'enqueued')
end
return outcomes
"""


class BulkEnqueuer:
    def __init__(
        self,
        redis: Redis,
        *,
        queue_name: str,
        serializer: Callable[[dict[str, Any]], bytes],
        expires_ms: int,
        keys: WorkerKeys | None = None,
        scale: PriorityScale | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys or WorkerKeys()
        self._scale = scale or PriorityScale()
        self._queue = queue_name
        self._serialize = serializer
        self._expires_ms = expires_ms
        self._script = redis.register_script(_ENQUEUE)

    async def enqueue_many(self, jobs: Sequence[FanoutJob]) -> list[FanoutOutcome]:
        outcomes: list[FanoutOutcome] = []
        for start in range(0, len(jobs), CHUNK):
            outcomes += await self._enqueue_chunk(jobs[start : start + CHUNK])
        return outcomes

    async def _enqueue_chunk(self, jobs: Sequence[FanoutJob]) -> list[FanoutOutcome]:
        enqueue_ms = int(time.time() * 1000)
        keys: list[str] = [self._queue]
        args: list[str | int | bytes] = [self._expires_ms, self._keys.wake]
        for job in jobs:
            keys += [
                JOB_KEY_PREFIX + job.job_id,
                RESULT_KEY_PREFIX + job.job_id,
                job.claim_key or "",
                job.count_key or "",
                job.members_key or "",
                self._keys.priority(job.job_id),
            ]
            shift = self._scale.shift_ms(job.priority, job.rank)
            # arq's job record: try, function, args, kwargs, enqueue time.
            body: dict[str, Any] = {
                "t": None,
                "f": job.function,
                "a": [job.payload],
                "k": {},
                "et": enqueue_ms,
            }
            args += [job.job_id, self._serialize(body), enqueue_ms - shift, shift]
        return list(await self._script(keys=keys, args=args))
