"""The queue's order: priorities with aging, kept in arq's own queue and scores.

arq starts the jobs whose score (ms) is at most now, lowest score first. A job of priority
class `c` is scored `due - level(c) * step + tiebreak` (levels: reply 4, hot 3, warm 2, cold 1,
maintenance 0; `step` is `PW_PRIORITY_STEP_S`, 10 minutes by default; `tiebreak` is the ICP
rank in ms, capped at half a step). So arq's time-ordered read is priority order, and the
offset between two classes is the aging bound: a job is overtaken only by jobs of a higher class
that became due less than `(level difference) * step` after it. Under any steady stream of
higher jobs, a cold job starts at most `2 * step` (behind hot ones) plus the time to drain what
was ahead of it then. A plain arq client's job (and arq's cron) has no offset: the maintenance
level.

A job's shift (`level * step - tiebreak`) is kept beside it (`WorkerKeys.priority`, with the job's
life) so that its class survives a retry or a deferral. arq re-scores a retried job to
`now + delay`, which would lose the class; the engine re-scores it instead (one script):

- a delay of zero (a shutdown cancellation): `now - shift`, runnable at once, in its class;
- a delay: score `now + delay` (so arq's `score <= now` rule still keeps it from starting
  early, and arq's `Job.status()` says deferred) and an entry in the deferred set; once due, a
  worker promotes it to `due - shift`, back in its class (`promote`: within 0.1 s of its due
  time by the worker that deferred it, else within a second by any worker). Until then it is
  runnable at the maintenance level: never lost, only later.
- a job of a paused type is not promoted (`in_class=False`): it waits at `now + delay`, behind
  every job due before it, so a backlog of a paused class never holds the head of the queue
  while other types wait; it regains its class when it is deferred or retried again after the
  resume, or runs.

Running jobs leave the head of the queue: the engine's claim moves each job it claims to
`now + in-progress TTL`, in the same step (renewed with the in-progress markers), so the ids an
idle replica reads from the head (arq's `queue_read_limit`) are runnable ones, never a wall of
running jobs. A dead worker's jobs come
back to the head when their markers lapse.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import get_args

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from jobs.models import Priority
from worker.keys import WorkerKeys

PRIORITIES: tuple[Priority, ...] = get_args(Priority)
LEVELS: Mapping[Priority, int] = {"reply": 4, "hot": 3, "warm": 2, "cold": 1, "maintenance": 0}
BY_LEVEL: Mapping[int, Priority] = {level: name for name, level in LEVELS.items()}
DEFAULT_PRIORITY: Priority = "maintenance"  # a plain arq client's job, and arq's cron jobs
# The deferred set outlives its newest entry by a day: entries of jobs that finished or
# expired meanwhile leave with it (a promotion removes the rest).
DEFERRED_SET_LIFE_MS = 86_400_000

# KEYS: queue, deferred set, the job's priority key.
# ARGV: job id, now (ms), delay (ms), the deferred set's life (ms), 1 to promote it back into
# its class once due.
_RESCHEDULE = """
local shift = tonumber(redis.call('GET', KEYS[3]) or '0')
local now, delay = tonumber(ARGV[2]), tonumber(ARGV[3])
if delay <= 0 then
  redis.call('ZADD', KEYS[1], 'XX', now - shift, ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + delay, ARGV[1])
if shift ~= 0 and ARGV[5] == '1' then
  redis.call('ZADD', KEYS[2], now + delay, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return 1
end
return 0
"""

# KEYS: queue, deferred set. ARGV: now (ms), priority key prefix, batch size.
# Returns the number promoted and the due time of the next deferred job (or -1).
_PROMOTE = """
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, ARGV[3])
local promoted = 0
for i = 1, #due, 2 do
  local id, at = due[i], tonumber(due[i + 1])
  redis.call('ZREM', KEYS[2], id)
  -- Only a job still waiting at that due time: not one running (its score is in the future)
  -- nor one finished or enqueued again since.
  if tonumber(redis.call('ZSCORE', KEYS[1], id) or '-1') == at then
    local shift = tonumber(redis.call('GET', ARGV[2] .. id) or '0')
    redis.call('ZADD', KEYS[1], 'XX', at - shift, id)
    promoted = promoted + 1
  end
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {promoted, nxt[2] or -1}
"""


def became_due_ms(score_ms: int, shift_ms: int | None, enqueued_ms: int | None, now_ms: int) -> int:
    """When a job starting now became due (ms), from its score and its kept shift: what its
    queue wait runs from, so a class's head start never counts as waiting.

    A job in its class is scored `due - shift`. A retried or deferred job not promoted yet is
    scored at its due time itself, its shift still kept; the two are told apart because a job
    is promoted only once due (so `score + shift <= now`), while an unpromoted score is later
    than the job's enqueue time. A job scored ahead of its enqueue time is in its class even
    when `score + shift` is still to come (a deferral shorter than its shift): it started
    early, and its wait is nil."""
    if not shift_ms:
        return score_ms
    shifted = score_ms + shift_ms
    if shifted <= now_ms or (enqueued_ms is not None and score_ms < enqueued_ms):
        return shifted
    return score_ms


@dataclass(frozen=True)
class PriorityScale:
    step_s: float = 600.0

    @property
    def step_ms(self) -> int:
        return int(self.step_s * 1000)

    def shift_ms(self, priority: Priority, rank: int | None = None) -> int:
        """How far ahead of its due time a job is scored: its class, less its rank."""
        tiebreak = min(rank or 0, self.step_ms // 2)
        return LEVELS[priority] * self.step_ms - tiebreak

    def priority_of(self, shift_ms: int | None) -> Priority:
        """The class a kept shift (`WorkerKeys.priority`) stands for; none kept: the maintenance
        level.

        A shift is `level * step` less a tiebreak of at most half a step, so rounding up to
        whole steps gives the level back."""
        if not shift_ms or shift_ms <= 0:
            return DEFAULT_PRIORITY
        level = min(max(LEVELS.values()), -(-shift_ms // self.step_ms))
        return BY_LEVEL[level]


class QueueOrder:
    """The engine's side of the order: re-scoring started, retried and deferred jobs."""

    def __init__(self, redis: Redis, keys: WorkerKeys, *, queue_name: str) -> None:
        self._redis = redis
        self._keys = keys
        self._queue = queue_name
        self._reschedule = redis.register_script(_RESCHEDULE)
        self._promote = redis.register_script(_PROMOTE)

    def keep_out_of_head(self, pipe: Pipeline, job_ids: Iterable[str], until_ms: int) -> None:
        """Queue on `pipe` (the engine's renewal): running jobs stay out of the head."""
        for job_id in job_ids:
            pipe.zadd(self._queue, {job_id: until_ms}, xx=True)

    @property
    def priority_prefix(self) -> str:
        """The keys of the kept shifts, less the job id: the engine's claim reads them."""
        return self._keys.priority("")

    async def reschedule(
        self, job_id: str, now_ms: int, delay_ms: int, *, in_class: bool = True
    ) -> bool:
        """Put a job that did not finish back in its class (or, `in_class=False`, behind every
        job due before it); True when it waits in the deferred set for promotion."""
        keys = [self._queue, self._keys.deferred, self._keys.priority(job_id)]
        life_ms = delay_ms + DEFERRED_SET_LIFE_MS
        args: list[str | int] = [job_id, now_ms, delay_ms, life_ms, "1" if in_class else "0"]
        return bool(await self._reschedule(keys=keys, args=args))

    async def promote(self, now_ms: int, batch: int = 500) -> tuple[int, int | None]:
        """Promote due deferred jobs back into their class: (promoted, next due ms or None)."""
        keys = [self._queue, self._keys.deferred]
        promoted, next_due = await self._promote(
            keys=keys, args=[now_ms, self._keys.priority(""), batch]
        )
        due = int(next_due)
        return int(promoted), (due if due >= 0 else None)
