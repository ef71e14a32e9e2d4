"""The worker's first connection to Redis: one line per failed try, and a clean exit.

arq's own start retries any error (a wrong password five times over), then ends in a traceback.
Here a refused password ends the start at once (it will not fix itself); an unreachable Redis
is tried again arq's `conn_retries` times, `conn_retry_delay` apart, one line each; either way
the last line says why, and the process exits 1 without a traceback. The password never shows.
"""

import asyncio
import logging
from dataclasses import replace
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.exceptions import AuthenticationError, RedisError

from worker.connections import describe_redis

log = logging.getLogger("prospect_worker.startup")

EXIT_NO_REDIS = 1


class StartupFailed(SystemExit):
    """Ends the process with EXIT_NO_REDIS, once the reason is logged (no traceback)."""

    def __init__(self) -> None:
        super().__init__(EXIT_NO_REDIS)


async def connect(given: RedisSettings | None, **pool_options: Any) -> ArqRedis:
    """arq's pool (`pool_options` as arq's `create_pool` takes them), or StartupFailed."""
    settings = given or RedisSettings()  # arq's default, as its own start takes it
    where = describe_redis(settings)
    tries = settings.conn_retries + 1
    once = replace(settings, conn_retries=0)  # arq tries once; the retrying and its lines are ours
    attempt = 1
    while True:
        try:
            return await create_pool(once, **pool_options)
        except AuthenticationError as exc:
            log.error("cannot start: Redis at %s refused the login (%s); exiting", where, exc)
            raise StartupFailed from None
        except (RedisError, OSError, TimeoutError) as exc:
            why = f"{type(exc).__name__}: {exc}"
            if attempt == tries:
                log.error(
                    "cannot start: Redis at %s unreachable after %d tries (%s); exiting",
                    where,
                    tries,
                    why,
                )
                raise StartupFailed from None
            log.warning(
                "Redis at %s unreachable (%s); try %d of %d, again in %g s",
                where,
                why,
                attempt,
                tries,
                settings.conn_retry_delay,
            )
            await asyncio.sleep(settings.conn_retry_delay)
            attempt += 1
