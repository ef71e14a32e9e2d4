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

**Request rates.** A sliding window per service and period (second, minute): one sorted set of
the requests sent in the last window, scored by Redis's own clock (`TIME`, so replicas never
disagree), checked and written by one script for every period at once. At most `limit` requests
are let through in any window; the window is held a little longer than its period (2 % or
250 ms, see `window_ms`) so that the trip to the provider cannot push more than the limit into
one period as the provider counts it. A request that finds the service at its limit is deferred
until the oldest request in the window leaves it, plus a jitter of one request spacing so that
the waiting jobs do not all come back in the same millisecond.
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

# KEYS: the type's lease set. ARGV: job id, limit, now (ms), lease (ms).
_TAKE_LEASE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1])
    or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
"""

# KEYS: one window set per period. ARGV: a unique member, then per period: limit, window (ms).
# Returns 0 when the request may go now (and records it in every window), else the ms to wait.
_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local limit, window = tonumber(ARGV[i * 2]), tonumber(ARGV[i * 2 + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local frees = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(frees[2]) + window - now + 1)
  end
end
if wait > 0 then
  return wait
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, ARGV[i * 2 + 1])
end
return 0
"""

# KEYS: the type's lease set, the job's fence. ARGV: job id, the job's token. The lease is left
# alone when another worker's token holds the job: it is that worker's lease now (same id).
_DROP_LEASE = """
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= ARGV[2] then return 0 end
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

PERIODS_S: Mapping[str, float] = {"s": 1.0, "min": 60.0}
TYPE_LIMIT_RETRY_S = 0.5  # a job of a full type comes back after this long (jittered)


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

    @property
    def spacing_s(self) -> float:
        return PERIODS_S[self.period] / self.limit


class RateLimiter:
    """The `jobs.clients.gate.RateGate` every provider client sends through."""

    def __init__(
        self,
        redis: Redis,
        keys: WorkerKeys,
        rates: Mapping[str, tuple[Rate, ...]],
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._rates = {service: rates for service, rates in rates.items() if rates}
        self._rand = rand
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
        keys = [self._keys.rate_window(service, rate.period) for rate in rates]
        args: list[str | int] = [uuid.uuid4().hex]
        for rate in rates:
            args += [rate.limit, window_ms(PERIODS_S[rate.period])]
        wait_ms = int(await self._script(keys=keys, args=args))
        if wait_ms <= 0:
            self.sent[service] += 1
            return
        self.deferred[service] += 1
        spacing = min(rate.spacing_s for rate in rates)
        raise Deferred(wait_ms / 1000 + spacing * self._rand(), reason="rate_limit", limit=service)


class TypeLeases:
    """Per-type concurrency across every replica; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        keys: WorkerKeys,
        *,
        lease_s: float,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._lease_ms = int(lease_s * 1000)
        self._clock = clock
        self._rand = rand
        self._script = redis.register_script(_TAKE_LEASE)
        self._drop = redis.register_script(_DROP_LEASE)
        self._held: dict[str, str] = {}  # job id -> its lease set, while the job runs

    async def take(
        self,
        function: str,
        job_id: str,
        limit: int,
        *,
        along: Callable[[Pipeline], None] | None = None,
    ) -> None:
        """Hold one of the type's `limit` leases, or raise Deferred. `along` queues more
        commands on the same round trip (sent whether or not the lease is taken)."""
        key = self._keys.type_leases(function)
        args: list[str | int] = [job_id, limit, int(self._clock() * 1000), self._lease_ms]
        # EVALSHA queued by hand: a script registered on a pipeline costs a SCRIPT EXISTS
        # round trip on every execute. The script is loaded at start; a Redis that lost it
        # (restarted) answers NOSCRIPT, and the plain call below loads it again.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.evalsha(self._script.sha, 1, key, *map(str, args))
            if along is not None:
                along(pipe)
            taken = (await pipe.execute(raise_on_error=False))[0]
        if isinstance(taken, NoScriptError):
            taken = await self._script(keys=[key], args=args)
        elif isinstance(taken, Exception):
            raise taken
        if not int(taken):
            delay = TYPE_LIMIT_RETRY_S * (0.5 + self._rand())
            raise Deferred(delay, reason="type_limit", limit=function)
        self._held[job_id] = key

    async def drop(self, job_id: str) -> None:
        key = self._held.pop(job_id, None)
        if key is None:
            return
        fence = CURRENT.get()
        if fence is None:
            await self._redis.zrem(key, job_id)
        else:
            await self._drop(keys=[key, fence.key], args=[job_id, fence.token])

    def renew(self, pipe: Pipeline, job_ids: Iterable[str]) -> None:
        """Queue on the engine's pipeline the renewal of the leases these jobs hold here (the
        jobs whose markers are still this worker's)."""
        expires = int(self._clock() * 1000) + self._lease_ms
        for job_id in job_ids:
            key = self._held.get(job_id)
            if key is not None:
                pipe.zadd(key, {job_id: expires}, xx=True)
                pipe.pexpire(key, self._lease_ms)
