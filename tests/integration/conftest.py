"""Helpers for integration tests: settings on the session's Redis, and real arq workers."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, cast

import pytest
from arq.worker import get_kwargs
from redis.asyncio import Redis

from jobs.deps import Deps
from settings import Settings
from worker.app import EngineParts, worker_settings
from worker.client import QueueClient
from worker.connections import redis_settings
from worker.engine.functions import arq_function
from worker.engine.serializer import deserialize, serialize
from worker.engine.worker import CTX_CONFIG, EngineConfig, EngineWorker
from worker.keys import WorkerKeys
from worker.registry import job_specs
from worker.runtime.deadletter import DeadLetters
from worker.runtime.failures import RetryPolicy
from worker.runtime.outcomes import JobObserver
from worker.runtime.runtime import Runtime
from worker.runtime.spec import JobSpec
from worker.scripts import preload_scripts

FAST_RETRY = {"max_tries": 3, "base_delay_s": 0.05, "max_delay_s": 0.2}
FAST_RETRY_POLICY = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=60)


def make_settings(redis_url: str, **overrides: Any) -> Settings:
    overrides.setdefault("retry", FAST_RETRY)
    overrides.setdefault("daily_catch_up", False)  # tests start their own runs
    # In-process workers serve no metrics port unless a test asks (tests pick free ports).
    overrides.setdefault("metrics_port", 0)
    return Settings(REDIS_URL=redis_url, **overrides)


def make_worker(
    settings: Settings,
    *,
    adjust_deps: Callable[[Deps], Deps] | None = None,
    burst: bool = True,
) -> EngineWorker:
    # arq annotates get_kwargs as returning dict[str, NameError]; the values are settings.
    kwargs: dict[str, Any] = get_kwargs(worker_settings(settings, adjust_deps=adjust_deps))
    kwargs.update(burst=burst, poll_delay=0.01, handle_signals=False)
    return EngineWorker(**kwargs)


async def drain(
    settings: Settings, adjust_deps: Callable[[Deps], Deps] | None = None
) -> EngineWorker:
    """Run a burst worker until the queue is empty (retries included)."""
    worker = make_worker(settings, adjust_deps=adjust_deps)
    try:
        await worker.main()
    finally:
        await worker.close()
    return worker


async def drain_due(settings: Settings, *, horizon_s: float = 2.0) -> EngineWorker:
    """Run a worker until no job is running and none is due within `horizon_s`: unlike arq's
    burst mode, which waits for every queued job, this leaves a job deferred for hours (a
    draft over the day's sending cap) queued."""
    worker = make_worker(settings, burst=False)
    running = asyncio.create_task(worker.main())
    redis = Redis.from_url(settings.redis_url)
    try:
        quiet = 0
        while quiet < 3:  # three looks in a row: a retry in flight has time to show
            await asyncio.sleep(0.1)
            horizon_ms = int((time.time() + horizon_s) * 1000)
            due = await redis.zcount(settings.queue_name, "-inf", horizon_ms)
            quiet = quiet + 1 if due == 0 and not worker.tasks else 0
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.close()
        await redis.aclose()
    return worker


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[QueueClient]:
    queue = await QueueClient.connect(settings, specs=job_specs(settings))
    yield queue
    await queue.close()


def spec_runtime(
    redis: Redis, spec: JobSpec[Any, Any], observers: Sequence[JobObserver] = ()
) -> Runtime:
    """The runtime around one test job spec, with fast retries and no pipeline deps."""
    keys = WorkerKeys()
    return Runtime(
        cast(Deps, None),
        redis,
        keys,
        FAST_RETRY_POLICY,
        DeadLetters(redis, keys, queue_name="arq:queue", job_expires_ms=60_000),
        specs={spec.name: spec},
        observers=observers,
    )


def spec_worker(
    redis_url: str,
    redis: Redis,
    spec: JobSpec[Any, Any],
    *,
    observers: Sequence[JobObserver] = (),
    burst: bool = True,
    config: EngineConfig | None = None,
) -> EngineWorker:
    """The engine's worker running one test job spec, wired as production wires its jobs
    (worker/app.py): scripts preloaded, type leases, the queue's order, the pause switch and
    the wake-up channel; only the job's dependencies and the retry delays are the test's."""
    settings = make_settings(redis_url)
    config = config or EngineConfig(settings.recovery.in_progress_ttl_s, settings.recovery.renew_s)
    keys = WorkerKeys(settings.key_prefix)

    async def startup(ctx: dict[str, Any]) -> None:
        parts = EngineParts.build(
            redis,
            keys,
            queue_name=settings.queue_name,
            lease_s=config.in_progress_ttl_s,
            dead_letter_max_entries=settings.dead_letter_max_entries,
        )
        await preload_scripts(redis, parts)
        parts.install(ctx)
        ctx["runtime"] = Runtime(
            cast(Deps, None),
            redis,
            keys,
            FAST_RETRY_POLICY,
            parts.dead_letters,
            specs={spec.name: spec},
            observers=observers,
            leases=parts.leases,
        )

    async def job_end(ctx: dict[str, Any]) -> None:
        await ctx["runtime"].arq_job_ended(ctx)

    return EngineWorker(
        functions=[arq_function(spec, max_redeliveries=2)],
        redis_settings=redis_settings(settings),
        queue_name=settings.queue_name,
        on_startup=startup,
        on_job_end=job_end,
        burst=burst,
        poll_delay=0.01,
        handle_signals=False,
        job_serializer=serialize,
        job_deserializer=deserialize,
        ctx={CTX_CONFIG: config},
    )
