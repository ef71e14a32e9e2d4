"""Limits shared by every replica, kept in Redis: per-type concurrency leases and per-service
request rates. Neither holds a worker slot while it waits: a job that meets one raises
`jobs.errors.Deferred` and the runtime puts it back in the queue (no try spent).

**Type leases.** A job of a type with a limit of N runs only while it holds one of N leases: a
sorted set of job ids scored by when the lease lapses. The lease is taken (atomically, one
script) just before the body runs and dropped when it ends; the engine renews the leases of its
running jobs with their in-progress markers, so a killed worker's leases lapse within
`in_progress_ttl_s`, like its jobs' markers. A redelivered job finds its own lease and keeps it.
Fencing (worker/runtime/fencing.py): a lease is renewed only while the job's marker holds this
worker's token, and a worker that lost the job does not drop the lease its new owner now holds.
Lease times are the workers' clocks (a skew of a few seconds against a 20 s lease is harmless).

**Parking.** A job that finds its type full is not put back to be claimed again and again (each
free slot of a busy worker would claim it, find the type full and defer it: 176 deferrals in
1.6 s were seen with a type limit of 20 and `max_jobs` 50). The lease script parks it instead,
in the same step: it waits in the type's parked set (`WorkerKeys.parked`), scored by its place in
the queue when it was claimed (its priority order), and its queue score moves out of reach,
`PARKED_FOR_S` ahead (so arq's `Job.status()` says deferred, and nothing claims it). Whatever
frees a lease hands the slot on in the same step (`HAND_OVER`): the engine's finish, which drops
the lease a job held, the lease script itself (lapsed leases) and the engine's periodic sweep.
The parked job with the lowest score gets its place in the queue back and a lease in its own
name, so a newcomer cannot take the slot meanwhile; it keeps that lease when it is claimed (a
job that finds its own lease keeps it). Crash safety: a dead worker's leases lapse with its
markers and the next sweep (any worker, every `renew_s`) hands their slots on; a handed-over
lease whose job is never claimed lapses the same way; and a parked job whose set was lost
comes back by itself when its queue score comes due.

**Request rates.** A sliding window per service and period (second, minute): one sorted set of
the requests sent in the last window, scored by Redis's own clock (`TIME`, so replicas never
disagree), checked and written by one script for every period at once. At most `limit` requests
are let through in any window; the window is held a little longer than its period (2 % or
250 ms, see `window_ms`) so that the trip to the provider cannot push more than the limit into
one period as the provider counts it.

**Booked slots.** A request that finds the service at its limit is deferred to a slot booked for
it in the same step (a second sorted set per service and period, `WorkerKeys.rate_booked`): the
moment the window, counting the requests sent and the slots booked before this one, has room for
one more. So the k-th waiter comes back when the k-th place frees, not with all the others when
the first one does (a herd, mostly refused again). A booking only spaces the returns; the window
stays the authority: a request is let through only while the requests sent in the window and the
slots now due (their waiters are on their way), less the one it takes, leave room. Which due
slot is whose is not known (requests are alike): a request let through takes the oldest, so a
newcomer arriving just as a slot comes due takes it, and its waiter is booked again. A waiter
that finds its slot still held up by a request that went late keeps it, moved to when that
request leaves. A due slot lapses `BOOKING_LAPSE_MS` after its time, so a waiter that never
comes back holds no room for long.
"""

import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from jobs.errors import Deferred
from jobs.fencing import CURRENT
from worker.keys import WorkerKeys

# A Lua function for the scripts that free leases: lapsed leases leave, then each free slot
# goes to the parked job with the lowest score, with its place in the queue back and a lease in
# its name. A parked id no longer in the queue (finished, expired) is dropped. Returns how many
# were handed a slot.
HAND_OVER = """
local function hand_over(leases, parked, queue, limit, now, lease_ms)
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  if redis.call('EXISTS', parked) == 0 then return 0 end
  local handed = 0
  while redis.call('ZCARD', leases) < limit do
    local head = redis.call('ZPOPMIN', parked)
    if #head == 0 then break end
    if redis.call('ZSCORE', queue, head[1]) then
      redis.call('ZADD', queue, 'XX', head[2], head[1])
      redis.call('ZADD', leases, now + lease_ms, head[1])
      redis.call('PEXPIRE', leases, lease_ms)
      handed = handed + 1
    end
  end
  return handed
end
"""

# KEYS: the type's lease set, its parked set, the queue. ARGV: job id, limit, now (ms), lease
# (ms), the job's queue score when claimed ('' parks nothing), its queue score while parked, the
# parked set's life (ms). 1: the lease is the job's; 2: parked; 0: full (not parked). Parked
# jobs come before a newcomer: free slots go to them first.
_TAKE_LEASE = (
    HAND_OVER
    + """
local limit, now, lease_ms = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  hand_over(KEYS[1], KEYS[2], KEYS[3], limit, now, lease_ms)
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + lease_ms, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease_ms)
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
if ARGV[5] == '' then return 0 end
redis.call('ZADD', KEYS[3], 'XX', ARGV[6], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return 2
"""
)

# KEYS: per type its lease set and parked set, then the queue. ARGV: now (ms), lease (ms), each
# type's limit. Returns how many parked jobs were handed a slot.
_SWEEP = (
    HAND_OVER
    + """
local handed = 0
local queue = KEYS[#KEYS]
for i = 1, #ARGV - 2 do
  handed = handed + hand_over(KEYS[i * 2 - 1], KEYS[i * 2], queue, tonumber(ARGV[i + 2]),
    tonumber(ARGV[1]), tonumber(ARGV[2]))
end
return handed
"""
)

# KEYS: per period its window set, then its booked set. ARGV: a unique member, how long a due
# slot waits for its waiter (ms), the gap left behind a booked slot (ms), then per period:
# limit, window (ms). Returns 0 when the request may go now (and records it in every window),
# else the ms until the slot booked (or kept) for it.
_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lapse, gap = tonumber(ARGV[2]), tonumber(ARGV[3])
local periods = #KEYS / 2
local due, full = {}, false
for i = 1, periods do
  local sent, booked = KEYS[i * 2 - 1], KEYS[i * 2]
  local limit, window = tonumber(ARGV[i * 2 + 2]), tonumber(ARGV[i * 2 + 3])
  redis.call('ZREMRANGEBYSCORE', sent, '-inf', now - window)
  redis.call('ZREMRANGEBYSCORE', booked, '-inf', string.format('(%d', now - lapse))
  -- Due slots are held against newcomers; this request takes one of them.
  due[i] = redis.call('ZCOUNT', booked, '-inf', now)
  if redis.call('ZCARD', sent) + due[i] - math.min(due[i], 1) >= limit then full = true end
end
if not full then
  for i = 1, periods do
    redis.call('ZADD', KEYS[i * 2 - 1], now, ARGV[1])
    redis.call('PEXPIRE', KEYS[i * 2 - 1], ARGV[i * 2 + 3])
    if due[i] > 0 then redis.call('ZPOPMIN', KEYS[i * 2]) end
  end
  return 0
end
-- A waiter back on its slot but held up by a request that went late (its own waiter came back
-- late): it keeps its slot, moved to when that request leaves, if that is soon.
local back, returning = now + 1, true
for i = 1, periods do
  local sent = KEYS[i * 2 - 1]
  local limit, window = tonumber(ARGV[i * 2 + 2]), tonumber(ARGV[i * 2 + 3])
  local nsent = redis.call('ZCARD', sent)
  local leaves = nsent + due[i] - 1 - limit
  if due[i] == 0 or leaves >= nsent then
    returning = false
  elseif leaves >= 0 then
    local entry = redis.call('ZRANGE', sent, leaves, leaves, 'WITHSCORES')
    back = math.max(back, tonumber(entry[2]) + window + 1)
  end
end
if returning and back - now <= lapse then
  for i = 1, periods do
    local booked = KEYS[i * 2]
    local oldest = redis.call('ZRANGE', booked, 0, 0)
    redis.call('ZADD', booked, 'XX', back, oldest[1])
    if redis.call('PTTL', booked) < back - now + lapse then
      redis.call('PEXPIRE', booked, back - now + lapse)
    end
  end
  return back - now
end
-- Else a slot: when the window, counting the requests sent and the slots booked before, has room.
local slot = now + 1
for i = 1, periods do
  local sent, booked = KEYS[i * 2 - 1], KEYS[i * 2]
  local limit, window = tonumber(ARGV[i * 2 + 2]), tonumber(ARGV[i * 2 + 3])
  local nsent, nbooked = redis.call('ZCARD', sent), redis.call('ZCARD', booked)
  local frees = nsent + nbooked - limit
  if frees >= 0 and frees < nsent then
    local entry = redis.call('ZRANGE', sent, frees, frees, 'WITHSCORES')
    slot = math.max(slot, tonumber(entry[2]) + window + 1)
  elseif frees >= nsent then
    -- A booked request goes a little after its slot: it leaves the window that much later.
    local entry = redis.call('ZRANGE', booked, frees - nsent, frees - nsent, 'WITHSCORES')
    slot = math.max(slot, tonumber(entry[2]) + window + gap)
  end
  if nbooked > 0 then
    local last = redis.call('ZRANGE', booked, -1, -1, 'WITHSCORES')
    slot = math.max(slot, tonumber(last[2]))
  end
end
for i = 1, periods do
  redis.call('ZADD', KEYS[i * 2], slot, ARGV[1])
  redis.call('PEXPIRE', KEYS[i * 2], slot - now + lapse)
end
return slot - now
"""

# KEYS: the type's lease set, the job's fence, its parked set, the queue. ARGV: job id, the
# job's token ('' no fence), limit, now (ms), lease (ms). The lease is left alone when another
# worker's token holds the job: it is that worker's lease now (same id). A dropped lease's slot
# is handed on.
_DROP_LEASE = (
    HAND_OVER
    + """
if ARGV[2] ~= '' then
  local owner = redis.call('GET', KEYS[2])
  if owner and owner ~= ARGV[2] then return 0 end
end
local dropped = redis.call('ZREM', KEYS[1], ARGV[1])
hand_over(KEYS[1], KEYS[3], KEYS[4], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
return dropped
"""
)

PERIODS_S: Mapping[str, float] = {"s": 1.0, "min": 60.0}
# A due slot waits this long for its waiter (the trip back through the queue and into the job),
# then lapses, so a waiter that never comes back (its job deleted, or needing the service no
# more) holds no room.
BOOKING_LAPSE_MS = 500
# A slot behind a booked one is placed this much later than the window allows, as its waiter
# sends a little after its slot; one that sends later still holds up the next waiter briefly
# (that one keeps its slot, moved on), never sends it to the back of the line.
BOOKING_GAP_MS = 50
TYPE_LIMIT_RETRY_S = 0.5  # a job of a full type not parked comes back after this long (jittered)
# A parked job's queue score is this far ahead: a backstop only (a slot is handed to it well
# before), so that a job whose parked entry was lost still runs, and is deferred at most once
# per this long meanwhile.
PARKED_FOR_S = 600.0
PARKED_SET_LIFE_MS = 86_400_000  # the parked set outlives its newest entry by a day


def window_ms(period_s: float) -> int:
    """The window held for a period: longer by 2 % or 250 ms, whichever is more, for the trip
    to the provider. A request may reach the provider later than it was let through (a new
    connection, a busy event loop: 150 ms was seen here), and a later one sooner: without this
    margin two windows' worth could land in one period as the provider counts it."""
    return int(period_s * 1000 + max(period_s * 20, 250))


@dataclass(frozen=True)
class Rate:
    limit: int
    period: str  # a key of PERIODS_S


class RateLimiter:
    """The `jobs.clients.gate.RateGate` every provider client sends through."""

    def __init__(
        self, redis: Redis, keys: WorkerKeys, rates: Mapping[str, tuple[Rate, ...]]
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._rates = {service: rates for service, rates in rates.items() if rates}
        self._script = redis.register_script(_RATE)
        # Read by a metrics observer: requests let through and deferrals, per service.
        self.sent: dict[str, int] = dict.fromkeys(self._rates, 0)
        self.deferred: dict[str, int] = dict.fromkeys(self._rates, 0)

    def limits(self) -> dict[str, tuple[Rate, ...]]:
        return dict(self._rates)

    async def acquire(self, service: str) -> None:
        rates = self._rates.get(service)
        if not rates:
            return  # no limit set for this service: no Redis call either
        keys: list[str] = []
        args: list[str | int] = [uuid.uuid4().hex, BOOKING_LAPSE_MS, BOOKING_GAP_MS]
        for rate in rates:
            keys += [
                self._keys.rate_window(service, rate.period),
                self._keys.rate_booked(service, rate.period),
            ]
            args += [rate.limit, window_ms(PERIODS_S[rate.period])]
        wait_ms = int(await self._script(keys=keys, args=args))
        if wait_ms <= 0:
            self.sent[service] += 1
            return
        self.deferred[service] += 1
        raise Deferred(wait_ms / 1000, reason="rate_limit", limit=service)


class Parked(Deferred):
    """The job's type is full and the job is parked: a freed lease hands it a slot (it is not
    re-scored meanwhile: the lease script already moved it)."""


@dataclass(frozen=True)
class HeldLease:
    """A lease a running job holds: what dropping it (and handing its slot on) needs."""

    function: str
    limit: int
    leases_key: str
    parked_key: str


class TypeLeases:
    """Per-type concurrency across every replica; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        keys: WorkerKeys,
        *,
        lease_s: float,
        queue_name: str = "arq:queue",
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._lease_ms = int(lease_s * 1000)
        self._queue = queue_name
        self._clock = clock
        self._rand = rand
        self._script = redis.register_script(_TAKE_LEASE)
        self._drop = redis.register_script(_DROP_LEASE)
        self._sweep = redis.register_script(_SWEEP)
        self._held: dict[str, HeldLease] = {}  # job id -> its lease, while the job runs

    @property
    def lease_ms(self) -> int:
        return self._lease_ms

    @property
    def queue_name(self) -> str:
        return self._queue

    @property
    def leases_prefix(self) -> str:
        return self._keys.type_leases("")

    @property
    def parked_prefix(self) -> str:
        return self._keys.parked("")

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def parked_until_ms(self) -> int:
        """A parked job's queue score: out of reach, a backstop only (see PARKED_FOR_S)."""
        return self.now_ms() + int(PARKED_FOR_S * 1000)

    def held_by(self, job_id: str, function: str, limit: int) -> None:
        """The engine's claim took this job's lease (Parking, worker/engine/worker.py)."""
        self._held[job_id] = HeldLease(
            function, limit, self._keys.type_leases(function), self._keys.parked(function)
        )

    async def take(
        self,
        function: str,
        job_id: str,
        limit: int,
        *,
        score_ms: int | None = None,
        along: Callable[[Pipeline], None] | None = None,
    ) -> None:
        """Hold one of the type's `limit` leases, or raise Deferred: `Parked` when the job's
        queue score when claimed (`score_ms`) was given, and it now waits in the type's parked
        set. `along` queues more commands on the same round trip (sent whatever the answer)."""
        held = HeldLease(
            function, limit, self._keys.type_leases(function), self._keys.parked(function)
        )
        keys = [held.leases_key, held.parked_key, self._queue]
        now_ms = self.now_ms()
        parked_until = self.parked_until_ms()
        args: list[str | int] = [
            job_id,
            limit,
            now_ms,
            self._lease_ms,
            "" if score_ms is None else score_ms,
            parked_until,
            PARKED_SET_LIFE_MS,
        ]
        # EVALSHA queued by hand: a script registered on a pipeline costs a SCRIPT EXISTS
        # round trip on every execute. The script is loaded at start; a Redis that lost it
        # (restarted) answers NOSCRIPT, and the plain call below loads it again.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.evalsha(self._script.sha, len(keys), *keys, *map(str, args))
            if along is not None:
                along(pipe)
            taken = (await pipe.execute(raise_on_error=False))[0]
        if isinstance(taken, NoScriptError):
            taken = await self._script(keys=keys, args=args)
        elif isinstance(taken, Exception):
            raise taken
        if int(taken) == 2:
            raise Parked(PARKED_FOR_S, reason="type_limit", limit=function)
        if not int(taken):
            delay = TYPE_LIMIT_RETRY_S * (0.5 + self._rand())
            raise Deferred(delay, reason="type_limit", limit=function)
        self._held[job_id] = held

    def held(self, job_id: str) -> HeldLease | None:
        return self._held.get(job_id)

    def hand_over(self, job_id: str) -> HeldLease | None:
        """The lease a job held, no longer tracked here: the engine drops it in the step that
        finishes the job (checked against the job's token there)."""
        return self._held.pop(job_id, None)

    async def drop(self, job_id: str) -> None:
        held = self._held.pop(job_id, None)
        if held is None:
            return
        fence = CURRENT.get()
        keys = [held.leases_key, fence.key if fence else held.leases_key, held.parked_key]
        args: list[str | int] = [
            job_id,
            fence.token if fence else "",
            held.limit,
            self.now_ms(),
            self._lease_ms,
        ]
        await self._drop(keys=[*keys, self._queue], args=args)

    async def sweep(self, limits: Mapping[str, int]) -> int:
        """Hand the free slots of each type (its lapsed leases: a dead worker's, a handed-over
        lease never claimed) to its parked jobs; how many were handed one."""
        if not limits:
            return 0
        keys: list[str] = []
        for function in limits:
            keys += [self._keys.type_leases(function), self._keys.parked(function)]
        args = [self.now_ms(), self._lease_ms, *limits.values()]
        return int(await self._sweep(keys=[*keys, self._queue], args=args))

    def renew(self, pipe: Pipeline, job_ids: Iterable[str]) -> None:
        """Queue on the engine's pipeline the renewal of the leases these jobs hold here (the
        jobs whose markers are still this worker's)."""
        expires = int(self._clock() * 1000) + self._lease_ms
        for job_id in job_ids:
            held = self._held.get(job_id)
            if held is not None:
                pipe.zadd(held.leases_key, {job_id: expires}, xx=True)
                pipe.pexpire(held.leases_key, self._lease_ms)
