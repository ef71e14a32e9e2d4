"""Sign-in attempts slowed after failures, per user name and client address, in Redis so that
every replica counts the same failures.

The first few failures cost nothing; after them each failure makes the next try wait, doubling
from one second up to a cap. A success clears the count. A wait is answered without checking
the password, so guessing during it learns nothing and costs the server no hashing.
"""

import hashlib

from redis.asyncio import Redis

from jobs.redisreply import reply
from settings import ConsoleSettings
from worker.console.sessions import Clock

# One script, so two replicas counting failures at once neither lose one nor race the wait.
FAIL = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local free = tonumber(ARGV[2])
local wait = 0
if failures >= free then
  wait = math.min(2 ^ (failures - free), tonumber(ARGV[3]))
  redis.call('HSET', KEYS[1], 'until', tonumber(ARGV[1]) + wait)
end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 4))
return tostring(wait)
"""


class SigninThrottle:
    def __init__(
        self, redis: Redis, *, prefix: str, settings: ConsoleSettings, clock: Clock
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._settings = settings  # signin_free_failures, signin_delay_max_s
        self._clock = clock
        self._fail = redis.register_script(FAIL)

    def _key(self, user: str, address: str) -> str:
        digest = hashlib.sha256(f"{user.casefold()}\n{address}".encode()).hexdigest()
        return f"{self._prefix}:console:signin:{digest}"

    async def wait_s(self, user: str, address: str) -> float:
        """Seconds before this user may try again from this address (0: now)."""
        until = await reply(self._redis.hget(self._key(user, address), "until"))
        return max(0.0, float(until) - self._clock()) if until else 0.0

    async def failed(self, user: str, address: str) -> float:
        """Count a failure; returns the wait it imposes."""
        wait = await self._fail(
            keys=[self._key(user, address)],
            args=[
                self._clock(),
                self._settings.signin_free_failures,
                self._settings.signin_delay_max_s,
            ],
        )
        return float(wait)

    async def succeeded(self, user: str, address: str) -> None:
        await self._redis.delete(self._key(user, address))
