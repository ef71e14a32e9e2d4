"""The two arq workers of the suite, each drained in burst mode in its own process.

- arq: a plain `arq.Worker`, an async function, orjson, poll 0.01 s.
- pw:  what `arq worker.WorkerSettings` runs (settings from the environment, the production
       wiring: startup, dependencies, serializer, runtime with priorities, limits, metrics and
       progress, and the worker class the package gives arq's CLI) plus one `JobSpec` adapted by
       `worker.engine.functions.arq_function`, type limit = the concurrency. Only public seams,
       so this keeps measuring whatever the engine becomes.

The parent enqueues the jobs in arq's format (`enqueue`) before the worker starts.
"""

import argparse
import asyncio
import logging.config
import time
from collections.abc import Callable
from typing import Any

import arq.worker
import orjson
from arq.connections import RedisSettings
from arq.jobs import serialize_job
from arq.logs import default_log_config
from arq.worker import Worker, func, get_kwargs
from pydantic import BaseModel
from redis.asyncio import Redis

from jobs.deps import Deps, Progress
from jobs.spec import JobBody, JobType
from scripts.bench.probe import RoundTrips, Span
from settings import load_settings

TASK = "bench_task"
QUEUE = "arq:queue"
POLL_S = 0.01
EXPIRES_MS = 3_600_000


class Sleep(BaseModel):
    seconds: float = 0.0


async def arq_task(ctx: dict[str, Any], seconds: float = 0.0) -> None:
    if seconds:
        await asyncio.sleep(seconds)


async def pw_task(deps: Deps, payload: Sleep, progress: Progress) -> Sleep:
    if payload.seconds:
        await asyncio.sleep(payload.seconds)
    return payload


def pw_env(concurrency: int) -> dict[str, str]:
    """The pw worker's settings (the parent adds REDIS_URL and a metrics port)."""
    return {
        "PW_MAX_JOBS": str(concurrency),
        "PW_POLL_DELAY_S": str(POLL_S),
        # Only the benchmark's jobs: no catch-up of today's missed daily run.
        "PW_DAILY_CATCH_UP": "false",
    }


async def enqueue(url: str, kind: str, jobs: int, seconds: float) -> None:
    """`jobs` jobs in arq's own format (what `enqueue_job` writes), pipelined: setup is quick.
    pw's payload is its model's JSON object; arq's is a keyword argument."""
    redis = Redis.from_url(url)
    now_ms = int(time.time() * 1000)
    args: tuple[Any, ...] = ({"seconds": seconds},) if kind == "pw" else ()
    kwargs = {} if kind == "pw" else {"seconds": seconds}
    for start in range(0, jobs, 1000):
        pipe = redis.pipeline(transaction=False)
        for i in range(start, min(start + 1000, jobs)):
            data = serialize_job(TASK, args, kwargs, None, now_ms, serializer=orjson.dumps)
            pipe.psetex(f"arq:job:{TASK}:{i}", EXPIRES_MS, data)
            pipe.zadd(QUEUE, {f"{TASK}:{i}": now_ms})
        await pipe.execute()
    await redis.aclose()


def build_worker(
    kind: str, url: str, concurrency: int, limit: int
) -> tuple[dict[str, Any], Callable[..., Worker]]:
    if kind == "arq":
        arq_kwargs = {
            "functions": [func(arq_task, name=TASK)],
            "redis_settings": RedisSettings.from_dsn(url),
            "job_serializer": orjson.dumps,
            "job_deserializer": orjson.loads,
            "max_jobs": concurrency,
            "poll_delay": POLL_S,
        }
        return arq_kwargs, Worker
    import worker as engine  # sets up logging and the class arq's CLI builds, as deployed
    from worker.app import worker_settings
    from worker.registry import JOB_TYPES

    engine.WorkerSettings  # noqa: B018 - what `arq worker.WorkerSettings` loads, for its effects
    task = JobType(name=TASK, load=lambda: JobBody(pw_task, Sleep), timeout_s=600.0, limit=limit)
    # A job type the worker is told of, as the project declares its own (its limit known to
    # the engine, not only to the runtime).
    kwargs: dict[str, Any] = dict(
        get_kwargs(worker_settings(load_settings(), job_types=(*JOB_TYPES, task)))
    )
    # Looked up now, as arq's CLI does: the package may have pointed the name at its own class.
    return kwargs, arq.worker.Worker


def deferrals(ctx: dict[str, Any]) -> float:
    """The runtime's deferred outcomes (a job put back because a limit was full), from the
    worker's own metrics; 0 for raw arq, which has no limits."""
    observability = ctx.get("observability")
    if observability is None:
        return 0.0
    return sum(
        sample.value
        for family in observability.metrics.registry.collect()
        for sample in family.samples
        if sample.name.endswith("job_outcomes_total") and sample.labels.get("outcome") == "deferred"
    )


async def drain(args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "arq":
        # arq's CLI logs each job's start and end at INFO (pw's wiring sets its own up).
        logging.config.dictConfig(default_log_config(verbose=False))
    trips = RoundTrips()
    span = Span(trips)
    kwargs, worker_class = build_worker(
        args.kind, args.redis, args.concurrency, args.limit or args.concurrency
    )
    worker_ctx: dict[str, Any] = {}
    startup: Callable[[dict[str, Any]], Any] | None = kwargs.get("on_startup")
    profiler: Any = None

    async def measured_startup(ctx: dict[str, Any]) -> None:
        nonlocal profiler
        if startup is not None:
            await startup(ctx)
        worker_ctx.update(ctx)
        await span.ready_then_go()
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="disabled", interval=0.0005)
            profiler.start()

    kwargs.update(on_startup=measured_startup, burst=True, handle_signals=False)
    worker = worker_class(**kwargs)
    try:
        await worker.main()
        if profiler is not None:
            profiler.stop()
        result = span.result(
            worker.jobs_complete,
            failed=worker.jobs_failed,
            retried=worker.jobs_retried,
            deferred=deferrals(worker_ctx),
        )
    finally:
        await worker.close()
    if profiler is not None:
        from scripts.bench.profile import write_profile

        write_profile(profiler, args.profile, worker.jobs_complete)
    return result
