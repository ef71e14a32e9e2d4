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
# What is the same for every job of a run (is it open, does it list members, the count, the
# members' expiry) is read and written once per run, and the queue and member sets take their
# additions in one command each: a fan-out's jobs share their run.
_ENQUEUE = """
local queue = KEYS[1]
local expires = ARGV[1]
local outcomes = {}
local runs = {}      -- count key -> {open, listed, added}
local members = {}   -- members key -> {count key, job ids}
local queued = {}    -- score, job id, ... for one ZADD
for i = 0, (#KEYS - 1) / 6 - 1 do
  local job_key, result_key = KEYS[2 + i * 6], KEYS[3 + i * 6]
  local claim_key, count_key = KEYS[4 + i * 6], KEYS[5 + i * 6]
  local members_key, priority_key = KEYS[6 + i * 6], KEYS[7 + i * 6]
  local job_id, body = ARGV[3 + i * 4], ARGV[4 + i * 4]
  local score, shift = ARGV[5 + i * 4], ARGV[6 + i * 4]
  local run = nil
  if count_key ~= '' then
    run = runs[count_key]
    if run == nil then
      run = {open = redis.call('HEXISTS', count_key, 'started_ms') == 1,
             listed = redis.call('HGET', count_key, 'members') == '1', added = 0}
      runs[count_key] = run
    end
  end
  local outcome = nil
  if run ~= nil and not run.open then
    outcome = 'unopened'
  elseif redis.call('EXISTS', job_key) == 1 then
    outcome = 'duplicate'
  elseif redis.call('EXISTS', result_key) == 1 then
    if members_key ~= '' and run ~= nil and run.listed
       and redis.call('SISMEMBER', members_key, job_id) == 0 then
      -- A result with no membership was left by a job of a run Redis lost: not this run's.
      redis.call('DEL', result_key)
    else
      outcome = 'duplicate'
    end
  end
  if outcome == nil and claim_key ~= ''
     and not redis.call('SET', claim_key, job_id, 'NX', 'PX', expires) then
    outcome = 'claimed'
  end
  if outcome == nil then
    redis.call('SET', job_key, body, 'PX', expires)
    queued[#queued + 1] = score
    queued[#queued + 1] = job_id
    if shift ~= '0' then
      redis.call('SET', priority_key, shift, 'PX', expires)
    end
    if run ~= nil then run.added = run.added + 1 end
    if members_key ~= '' then
      local listing = members[members_key]
      if listing == nil then
        listing = {count_key, {}}
        members[members_key] = listing
      end
      listing[2][#listing[2] + 1] = job_id
    end
    outcome = 'added'
  end
  outcomes[#outcomes + 1] = outcome
end
for start = 1, #queued, 2000 do
  redis.call('ZADD', queue, unpack(queued, start, math.min(start + 1999, #queued)))
end
for count_key, run in pairs(runs) do
  if run.added > 0 then
    -- More jobs to wait for: a finish stamped before these jobs existed is not one.
    redis.call('HINCRBY', count_key, 'total', run.added)
    redis.call('HDEL', count_key, 'finished_ms')
  end
end
for members_key, listing in pairs(members) do
  local ids = listing[2]
  for start = 1, #ids, 1000 do
    redis.call('SADD', members_key, unpack(ids, start, math.min(start + 999, #ids)))
  end
  local ttl = listing[1] ~= '' and redis.call('PTTL', listing[1]) or -1
  if ttl > 0 then redis.call('PEXPIRE', members_key, ttl) end
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
            keys, args = self._chunk(jobs[start : start + CHUNK])
            outcomes += await self._script(keys=keys, args=args)
        return outcomes

    def _chunk(self, jobs: Sequence[FanoutJob]) -> tuple[list[str], list[str | int | bytes]]:
        """The script's keys and arguments for these jobs."""
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
        return keys, args
