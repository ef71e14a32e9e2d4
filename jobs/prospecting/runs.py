"""The daily run as a whole: one Redis hash that its fan-out opens and its jobs tally into.

Each per-prospect job adds its outcome when it ends; whichever write makes `done` reach `total`
(after the fan-out has closed) stamps the finish time. Both steps are Lua so that check and
stamp are one atomic step even with many replicas ending jobs at once.
"""

from collections.abc import Mapping
from typing import Literal

from redis.asyncio import Redis

from jobs.errors import RunNotOpen
from jobs.fencing import JobLost, fence_key_and_token, lua_guard
from jobs.keys import Keys, prospect_job_id
from jobs.models import FanoutPlan, RunSummary
from jobs.prospecting.paging_log import RedisPagingLog
from jobs.redisreply import reply

RUN_TTL_S = 14 * 86_400

ProspectOutcome = Literal["queued", "skipped", "failed"]
Recorded = Literal["recorded", "replayed", "repeat", "refused"]
EVENTS: dict[ProspectOutcome, str] = {"skipped": "prospect_skipped", "failed": "prospect_failed"}

# One prospect's outcome, recorded once per run and prospect: the run's counters, the tracking
# event and the release of the prospect's claim happen together or not at all, so a job that
# runs twice (retry, crash, redelivery) neither counts twice nor leaves a second event. The one
# repeat that records: a prospect that failed for good and is replayed from the dead letters
# moves its counts (failed -1, the new counters +1) without a second `done`.
# Only the run's own jobs record (the members its fan-out added): a job of a run that Redis lost
# writes nothing, neither into a hash of its own nor into a run of the same day opened since.
# A run opened before runs listed their members (no `members` flag) takes any job of its id.
# A worker that no longer owns the job (jobs/fencing.py) is refused before anything is read.
# KEYS: run hash, outcomes hash, events stream, claim key, members set, the job's fence
# ARGV: now_ms, company_id, run_id, outcome, event type ('' for none), reason, job id (the
#       claim's owner), ttl_s, fence token ('' for none), then counter/increment pairs
_RECORD = (
    lua_guard("KEYS[6]", "ARGV[9]", "'lost'")
    + """
local run, outcomes, events, claim = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, member, outcome = ARGV[1], ARGV[2], ARGV[4]
if redis.call('HEXISTS', run, 'started_ms') == 0 or (redis.call('HGET', run, 'members') == '1'
    and redis.call('SISMEMBER', KEYS[5], ARGV[7]) == 0) then
  return 'refused'
end
local prior = redis.call('HGET', outcomes, member)
local replay = prior == 'failed' and outcome ~= 'failed'
if prior and not replay then return 'repeat' end
redis.call('HSET', outcomes, member, outcome)
redis.call('EXPIRE', outcomes, ARGV[8])
if replay then
  redis.call('HINCRBY', run, 'failed', -1)
else
  redis.call('HINCRBY', run, 'done', 1)
end
for i = 10, #ARGV, 2 do
  redis.call('HINCRBY', run, ARGV[i], ARGV[i + 1])
end
if redis.call('TTL', run) == -1 then redis.call('EXPIRE', run, ARGV[8]) end
if ARGV[5] ~= '' then
  redis.call('XADD', events, '*', 'type', ARGV[5],
    'company_id', member, 'run_id', ARGV[3], 'reason', ARGV[6], 'ts_ms', now)
end
if redis.call('GET', claim) == ARGV[7] then redis.call('DEL', claim) end
local done = tonumber(redis.call('HGET', run, 'done') or '0')
local total = tonumber(redis.call('HGET', run, 'total') or '0')
if redis.call('HGET', run, 'fanout_closed') == '1' and done >= total
   and not redis.call('HGET', run, 'finished_ms') then
  redis.call('HSET', run, 'finished_ms', now)
end
if replay then return 'replayed' end
return 'recorded'
"""
)

# Closing is idempotent across tries: its figures are set, never added, and `total` is not
# touched here (the fan-out counts each job it adds). The finish is stamped here only when the
# jobs all ended before the fan-out closed; otherwise the last job's record stamps it. A run
# that is not open (Redis lost it since) is not closed: -1.
# KEYS[1] run hash; ARGV: now_ms, discovered, discovery_incomplete ('' when complete), then
# skip-reason/count pairs.
_CLOSE_FANOUT = """
local run = KEYS[1]
if redis.call('HEXISTS', run, 'started_ms') == 0 then return -1 end
redis.call('HSET', run, 'fanout_closed', '1', 'discovered', ARGV[2])
redis.call('HDEL', run, 'fanout_failed', 'fanout_failed_ms')
if ARGV[3] ~= '' then
  redis.call('HSET', run, 'discovery_incomplete', ARGV[3])
else
  redis.call('HDEL', run, 'discovery_incomplete')
end
for i = 4, #ARGV, 2 do
  redis.call('HSET', run, 'skipped:' .. ARGV[i], ARGV[i + 1])
end
local done = tonumber(redis.call('HGET', run, 'done') or '0')
local total = tonumber(redis.call('HGET', run, 'total') or '0')
if done >= total and not redis.call('HGET', run, 'finished_ms') then
  redis.call('HSET', run, 'finished_ms', ARGV[1])
end
return total
"""

# A daily run that failed for good before its fan-out closed: its jobs fanned out so far still
# run and tally, but `done` can never reach a closed `total`, so the run says failed instead of
# running for ever. A replay that closes the fan-out clears the mark (`_CLOSE_FANOUT`).
# KEYS[1] run hash; ARGV: now_ms, reason. Returns 1 when marked.
_FAIL_FANOUT = """
local run = KEYS[1]
if redis.call('EXISTS', run) == 0 or redis.call('HGET', run, 'fanout_closed') == '1' then
  return 0
end
redis.call('HSET', run, 'fanout_failed', ARGV[2], 'fanout_failed_ms', ARGV[1])
return 1
"""

# Opening marks a new run as one that lists its own jobs (`members`), so the record and queue
# steps hold its jobs to that list; a run opened before (no flag) is left as it was.
# KEYS[1] run hash; ARGV: now_ms, ttl_s.
_OPEN = """
if redis.call('HSETNX', KEYS[1], 'started_ms', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'members', '1')
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
"""

COUNTERS = ("enriched", "scored", "drafted", "queued", "failed")
TEXTS = ("fanout_closed", "discovery_incomplete", "fanout_failed")


class RunLedger:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._open = redis.register_script(_OPEN)
        self._record = redis.register_script(_RECORD)
        self._close = redis.register_script(_CLOSE_FANOUT)
        self._fail = redis.register_script(_FAIL_FANOUT)

    async def open(self, run_id: str, now_ms: int) -> None:
        await self._open(keys=[self._keys.run(run_id)], args=[now_ms, RUN_TTL_S])

    async def close_fanout(
        self,
        run_id: str,
        *,
        discovered: int,
        skipped: Mapping[str, int],
        now_ms: int,
        discovery_incomplete: str | None = None,
    ) -> int:
        """Mark the fan-out done with its figures (set, so a retry does not add them twice);
        `skipped` should name every reason, zeros included. Returns the run's total."""
        pairs = [str(v) for item in skipped.items() for v in item]
        args: list[str | int] = [now_ms, discovered, discovery_incomplete or "", *pairs]
        total = int(await self._close(keys=[self._keys.run(run_id)], args=args))
        if total < 0:
            raise RunNotOpen(f"run {run_id} is no longer open (Redis lost it): not closed")
        return total

    async def fail_fanout(self, run_id: str, *, reason: str, now_ms: int) -> bool:
        """The run's job failed for good before its fan-out closed: say so in the run."""
        return bool(await self._fail(keys=[self._keys.run(run_id)], args=[now_ms, reason]))

    async def save_plan(self, run_id: str, plan: FanoutPlan) -> FanoutPlan:
        """Keep the run's plan unless one is kept already; returns the plan that is kept, so
        two tries (or replicas) racing to plan the same run both fan out the first plan."""
        key = self._keys.run_plan(run_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, plan.model_dump_json(), nx=True, ex=RUN_TTL_S)
            pipe.get(key)
            pipe.delete(self._keys.run_discovery(run_id))  # the plan holds what is needed
            _, kept, _ = await pipe.execute()
        return FanoutPlan.model_validate_json(kept)

    def paging(self, run_id: str) -> RedisPagingLog:
        """Where the run's discovery checkpoints its paging."""
        return RedisPagingLog(self._redis, self._keys.run_discovery(run_id), RUN_TTL_S)

    async def load_plan(self, run_id: str) -> FanoutPlan | None:
        raw = await self._redis.get(self._keys.run_plan(run_id))
        return None if raw is None else FanoutPlan.model_validate_json(raw)

    async def record_prospect(
        self,
        run_id: str,
        company_id: str,
        outcome: ProspectOutcome,
        counters: Mapping[str, int],
        *,
        reason: str = "",
        now_ms: int,
    ) -> Recorded:
        """Record a prospect job's outcome in its run once: `done` +1 plus its counters, the
        tracking event of a skip or a failure, and the release of the prospect's claim.

        "repeat" when this prospect was already recorded (the call changed nothing), "replayed"
        when a failed prospect now ended otherwise (its counts moved, `done` unchanged),
        "refused" when the job is not one the run fanned out (the run is gone, or was opened
        again after Redis lost it): nothing was written."""
        pairs = [str(v) for name, value in counters.items() if value for v in (name, value)]
        run = self._keys.run(run_id)
        fence_key, token = fence_key_and_token(run)
        keys = [
            run,
            self._keys.run_outcomes(run_id),
            self._keys.events,
            self._keys.claim(company_id),
            self._keys.run_members(run_id),
            fence_key,
        ]
        args: list[str | int] = [
            now_ms,
            company_id,
            run_id,
            outcome,
            EVENTS.get(outcome, ""),
            reason,
            prospect_job_id(run_id, company_id),
            RUN_TTL_S,
            token,
            *pairs,
        ]
        recorded: Recorded | Literal["lost"] = await self._record(keys=keys, args=args)
        if recorded == "lost":
            raise JobLost(f"tally of {company_id} refused: the job is no longer ours")
        return recorded

    async def summary(self, run_id: str) -> RunSummary | None:
        raw = await reply(self._redis.hgetall(self._keys.run(run_id)))
        if not raw:
            return None
        count = {name: int(value) for name, value in raw.items() if name not in TEXTS}
        finished = count.get("finished_ms")
        started = count.get("started_ms")
        failed = raw.get("fanout_failed")
        return RunSummary(
            run_id=run_id,
            state="complete" if finished is not None else "failed" if failed else "running",
            fanout_error=failed,
            discovered=count.get("discovered", 0),
            total=count.get("total", 0),
            done=count.get("done", 0),
            skipped={
                name.removeprefix("skipped:"): value
                for name, value in sorted(count.items())
                if name.startswith("skipped:") and value
            },
            duration_s=(finished - started) / 1000 if finished and started else None,
            discovery_incomplete=raw.get("discovery_incomplete"),
            **{name: count.get(name, 0) for name in COUNTERS},
        )
