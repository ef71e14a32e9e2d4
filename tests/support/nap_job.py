"""`arq tests.support.nap_job.WorkerSettings`: the production worker (settings from the
environment) with one more job type, `nap`, whose run time is the test's to choose: a job of a
given length (`seconds`), or one that runs until the test opens its gate (`gate`, a Redis key).

Each nap counts itself in Redis once its run time is over (`RUNS`: job number -> runs), and
keeps the most naps ever running at once (`PEAK`), so a test counts at the far end that every
job ran to its end exactly once and that the type's limit held."""

import asyncio
from typing import Any

from redis.asyncio import Redis

from jobs.deps import Deps, Progress
from jobs.models import Frozen
from jobs.redisreply import reply
from jobs.spec import JobBody, JobType

NAP_JOB = "nap"
RUNS, RUNNING, PEAK = "test:nap:runs", "test:nap:running", "test:nap:peak"

# KEYS: running, peak. The naps running now, and the most ever.
_ENTER = """
local n = redis.call('INCR', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
return n
"""


class Nap(Frozen):
    n: int
    seconds: float = 0.0
    gate: str | None = None


class Napped(Frozen):
    n: int


def _body() -> JobBody[Any, Any]:
    from settings import load_settings

    clients: dict[str, Redis] = {}  # one per worker process, made at the first nap

    async def nap(deps: Deps, request: Nap, progress: Progress) -> Napped:
        redis = clients.get("redis")
        if redis is None:
            redis = clients.setdefault("redis", Redis.from_url(load_settings().redis_url))
        await reply(redis.eval(_ENTER, 2, RUNNING, PEAK))
        if request.gate is not None:
            while not await redis.exists(request.gate):  # noqa: ASYNC110 - the test opens it
                await asyncio.sleep(0.02)
        else:
            await asyncio.sleep(request.seconds)  # the job's own run time, what a limit shares
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(RUNS, str(request.n), 1)
            pipe.decr(RUNNING)
            await pipe.execute()
        return Napped(n=request.n)

    return JobBody(nap, Nap)


NAP = JobType(name=NAP_JOB, load=_body, timeout_s=60.0, limit=4, priority="maintenance")


def __getattr__(name: str) -> Any:
    if name != "WorkerSettings":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import logging

    from settings import load_settings
    from worker.app import worker_settings
    from worker.engine.worker import use_in_arq_cli
    from worker.observability.log_setup import configure_logging
    from worker.registry import JOB_TYPES

    settings = load_settings()
    configure_logging(logging.getLevelNamesMapping()[settings.log_level], settings.log_format)
    use_in_arq_cli()
    return worker_settings(settings, job_types=(*JOB_TYPES, NAP))
