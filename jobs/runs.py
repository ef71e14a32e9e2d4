"""The daily run as a whole: one Redis hash that its fan-out opens and its jobs tally into.

Each per-prospect job adds its outcome when it ends; whichever write makes `done` reach `total`
(after the fan-out has closed) stamps the finish time. Both steps are Lua so that check and
stamp are one atomic step even with many replicas ending jobs at once.
"""

from collections.abc import Mapping

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from jobs.keys import Keys
from jobs.models import RunSummary

RUN_TTL_S = 14 * 86_400

# KEYS[1] run hash, KEYS[2] set of tallied members; ARGV[1] now_ms, ARGV[2] member, then
# field/increment pairs. A member already tallied (a job that ran twice) counts nothing again.
_TALLY = f"""
local run = KEYS[1]
if redis.call('SADD', KEYS[2], ARGV[2]) == 0 then return -1 end
redis.call('EXPIRE', KEYS[2], {RUN_TTL_S})
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', run, ARGV[i], ARGV[i + 1])
end
local done = tonumber(redis.call('HGET', run, 'done') or '0')
local total = tonumber(redis.call('HGET', run, 'total') or '0')
if redis.call('HGET', run, 'fanout_closed') == '1' and done >= total
   and not redis.call('HGET', run, 'finished_ms') then
  redis.call('HSET', run, 'finished_ms', ARGV[1])
end
return done
"""

# KEYS[1] run hash; ARGV: now_ms, jobs added, discovered, then skip-reason/count pairs.
_CLOSE_FANOUT = """
local run = KEYS[1]
redis.call('HSETNX', run, 'started_ms', ARGV[1])
local added = tonumber(ARGV[2])
redis.call('HINCRBY', run, 'total', added)
redis.call('HSET', run, 'fanout_closed', '1')
-- A later run on the same day may discover fewer (already contacted): keep the largest.
if tonumber(redis.call('HGET', run, 'discovered') or '0') < tonumber(ARGV[3]) then
  redis.call('HSET', run, 'discovered', ARGV[3])
end
for i = 4, #ARGV, 2 do
  redis.call('HINCRBY', run, 'skipped:' .. ARGV[i], ARGV[i + 1])
end
if added > 0 then redis.call('HDEL', run, 'finished_ms') end
local done = tonumber(redis.call('HGET', run, 'done') or '0')
local total = tonumber(redis.call('HGET', run, 'total') or '0')
if done >= total and not redis.call('HGET', run, 'finished_ms') then
  redis.call('HSET', run, 'finished_ms', ARGV[1])
end
return total
"""

COUNTERS = ("enriched", "scored", "drafted", "queued", "failed")


class RunLedger:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._tally = redis.register_script(_TALLY)
        self._close = redis.register_script(_CLOSE_FANOUT)

    @property
    def scripts(self) -> tuple[AsyncScript, ...]:
        return (
            self._tally,
            self._close,
        )

    async def open(self, run_id: str, now_ms: int) -> None:
        key = self._keys.run(run_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "started_ms", str(now_ms))
            pipe.expire(key, RUN_TTL_S)
            await pipe.execute()

    async def close_fanout(
        self, run_id: str, *, added: int, discovered: int, skipped: Mapping[str, int], now_ms: int
    ) -> int:
        pairs = [str(v) for item in skipped.items() for v in item]
        args: list[str | int] = [now_ms, added, discovered, *pairs]
        return int(await self._close(keys=[self._keys.run(run_id)], args=args))

    async def tally(
        self, run_id: str, member: str, increments: Mapping[str, int], *, now_ms: int
    ) -> bool:
        """Record one finished prospect job once: `done` +1 plus its counters.

        Returns False when `member` was already tallied (the job ran twice)."""
        pairs: list[str | int] = ["done", 1]
        for name, value in increments.items():
            if value:
                pairs += [name, value]
        keys = [self._keys.run(run_id), self._keys.run(run_id) + ":tallied"]
        return int(await self._tally(keys=keys, args=[now_ms, member, *pairs])) >= 0

    async def summary(self, run_id: str) -> RunSummary | None:
        # redis-py types the command's reply Awaitable[T] | T, which mypy cannot await.
        raw = await self._redis.hgetall(self._keys.run(run_id))  # type: ignore[misc]
        if not raw:
            return None
        count = {name: int(value) for name, value in raw.items() if name != "fanout_closed"}
        finished = count.get("finished_ms")
        started = count.get("started_ms")
        return RunSummary(
            run_id=run_id,
            state="complete" if finished is not None else "running",
            discovered=count.get("discovered", 0),
            total=count.get("total", 0),
            done=count.get("done", 0),
            skipped={
                name.removeprefix("skipped:"): value
                for name, value in sorted(count.items())
                if name.startswith("skipped:") and value
            },
            duration_s=(finished - started) / 1000 if finished and started else None,
            **{name: count.get(name, 0) for name in COUNTERS},
        )
