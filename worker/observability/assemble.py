"""Putting the observability parts together for one worker process, started and stopped with it:
the metrics, the job observers (metrics and logs), the loop heartbeat, the background sampler
and the HTTP server on the metrics port."""

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from prometheus_client import disable_created_metrics
from redis.asyncio import Redis

from settings import Settings
from worker.keys import WorkerKeys
from worker.observability.health import TICK_S, Heartbeat, Liveness, ProbeServer, RedisPing
from worker.observability.http_instrument import OPERATIONS
from worker.observability.job_counts import JobMetrics
from worker.observability.job_lines import JobLog
from worker.observability.metrics import Metrics
from worker.observability.sampler import Sampler
from worker.runtime.outcomes import JobObserver
from worker.scheduling.queueorder import PriorityScale
from worker.tasks import stop_tasks

log = logging.getLogger("prospect_worker.observability")


def build_metrics(settings: Settings, specs: Mapping[str, Any]) -> Metrics:
    # The `_created` series double the output and no dashboard or rule here reads them. This
    # is a process-wide switch of prometheus_client, and the worker is the whole process.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    return Metrics(
        list(specs),
        OPERATIONS,
        job_limits={name: spec.limit for name, spec in specs.items()},
        max_jobs=settings.max_jobs,
    )


@dataclass
class Observability:
    metrics: Metrics
    jobs: JobMetrics
    heartbeat: Heartbeat
    sampler: Sampler
    port: int | None  # the bound metrics port; None when off (or it could not be bound)
    log: JobLog

    @property
    def observers(self) -> tuple[JobObserver, ...]:
        return (self.jobs, self.log)


async def start_observability(
    settings: Settings,
    metrics: Metrics,
    stack: AsyncExitStack,
    *,
    queue_redis: Redis,
    redis: Redis,
    keys: WorkerKeys,
    replica: str,
    poll_tick: Callable[[], float] | None = None,
) -> Observability:
    """Start the heartbeat, the sampler and the HTTP server; `stack` stops them at shutdown.

    `poll_tick`: the monotonic time of the worker's last poll-loop pass, for /healthz."""
    jobs = JobMetrics(metrics)
    job_log = JobLog(summary_s=settings.log_repeat_s)
    heartbeat = Heartbeat(metrics)
    sampler = Sampler(
        metrics,
        jobs,
        queue_redis=queue_redis,
        redis=redis,
        keys=keys,
        queue_name=settings.queue_name,
        tz=settings.tz,
        daily_limit=settings.daily_limit,
        replica=replica,
        interval_s=settings.metrics_sample_s,
        priorities=PriorityScale(settings.priority_step_s),
        repeat_warning_s=settings.log_repeat_s,
    )
    tasks = [
        # Several ticks per staleness window, so a healthy loop never looks stale between two.
        asyncio.create_task(
            heartbeat.run(min(TICK_S, settings.health_stale_s / 4)), name="pw-heartbeat"
        ),
        asyncio.create_task(sampler.run(), name="pw-metrics-sampler"),
        asyncio.create_task(job_log.run(), name="pw-deferral-summary"),
    ]
    # Unwound last in, first out: the tasks stop, then the last outcomes go out.
    stack.push_async_callback(sampler.flush)
    stack.push_async_callback(stop_tasks, tasks)
    port = None
    if settings.metrics_port:
        ping = RedisPing(settings.redis_url, metrics)
        stack.callback(ping.close)
        alive = Liveness(heartbeat, stale_s=settings.health_stale_s, poll_tick=poll_tick)
        server = ProbeServer(metrics, alive, ping)
        try:
            port = server.start(settings.metrics_host, settings.metrics_port)
        except OSError as exc:
            # Jobs matter more than their figures: keep working. The probes on this port then
            # fail, which is how the orchestrator and the "worker down" alert see it.
            log.error("metrics port %d not served: %s", settings.metrics_port, exc)
        else:
            stack.callback(server.stop)
            log.info("metrics, /healthz and /readyz on port %d", port)
    return Observability(metrics, jobs, heartbeat, sampler, port, job_log)
