"""The background sampler: refreshes the queue-wide figures every few seconds, so a scrape only
reads memory and never scans Redis.

Each refresh: the queue's totals, split by type and priority class
(worker/observability/queue_depth.py), oldest due job and parked jobs per type; the dead-letter
stream's length; the pause switch; the daily run and today's quota; then this replica's
in-flight jobs and new outcomes go to Redis for `python -m worker stats` and the console's
charts (the outcomes once more at shutdown: `flush`). A Redis error is counted, and the next
refresh tries again; a repeated failure is logged at most once per `repeat_warning_s`, with a
count; the figures keep their last values meanwhile (the sample timestamp shows how old they
are).
"""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from redis.asyncio import Redis
from redis.exceptions import RedisError

from worker.keys import WorkerKeys
from worker.observability.daily_state import DailyState, read_daily_state
from worker.observability.job_counts import JobMetrics
from worker.observability.log_setup import RepeatedWarnings
from worker.observability.metrics import DAILY_STAGES, QUEUE_STATES, Metrics
from worker.observability.minute_counts import queue_tally
from worker.observability.queue_depth import QueueFigures, sample_queue
from worker.observability.replicas import publish
from worker.scheduling.pause import ALL, PauseSwitch
from worker.scheduling.queueorder import PRIORITIES, PriorityScale

log = logging.getLogger("prospect_worker.sampler")


class Sampler:
    def __init__(
        self,
        metrics: Metrics,
        jobs: JobMetrics,
        *,
        queue_redis: Redis,
        redis: Redis,
        keys: WorkerKeys,
        queue_name: str,
        tz: ZoneInfo,
        daily_limit: int,
        replica: str,
        interval_s: float,
        priorities: PriorityScale | None = None,
        clock: Callable[[], float] = time.time,
        repeat_warning_s: float = 30.0,
    ) -> None:
        """`queue_redis` returns bytes (queue members need not be UTF-8); `redis` returns str."""
        self._metrics = metrics
        self._jobs = jobs
        self._queue_redis = queue_redis
        self._redis = redis
        self._keys = keys
        self._queue_name = queue_name
        self._tz = tz
        self._daily_limit = daily_limit
        self._replica = replica
        self._repeated = RepeatedWarnings(log, repeat_warning_s)
        self.interval_s = interval_s
        self._priorities = priorities or PriorityScale()
        self._pause = PauseSwitch(redis, keys)
        self._clock = clock

    async def refresh(self) -> tuple[QueueFigures, DailyState]:
        started = time.monotonic()
        now = self._clock()
        figures = await sample_queue(
            self._queue_redis,
            self._queue_name,
            self._metrics.job_types,
            now_ms=int(now * 1000),
            keys=self._keys,
            priorities=self._priorities,
        )
        dead_letters = await self._redis.xlen(self._keys.dead_letters)
        paused = ALL in await self._pause.read()
        today = datetime.fromtimestamp(now, UTC).astimezone(self._tz).date()
        daily = await read_daily_state(
            self._redis, self._keys, today=today, limit=self._daily_limit
        )
        self._show(figures, dead_letters, daily, paused=paused)
        await self._publish(now)
        self._metrics.sample_timestamp.set(now)
        self._metrics.sample_duration.set(time.monotonic() - started)
        return figures, daily

    async def _publish(self, now: float) -> None:
        unpublished = self._jobs.take_unpublished()
        try:
            await publish(
                self._redis,
                self._keys,
                replica=self._replica,
                in_flight=self._jobs.in_flight(),
                outcomes=unpublished,
                now_s=now,
                ttl_s=3 * self.interval_s,
            )
        except BaseException:
            self._jobs.put_back(unpublished)
            raise

    async def flush(self) -> None:
        """At shutdown, after the last job ended: publish the outcomes counted since the last
        refresh, which would otherwise be lost with the process (a short burst run would chart
        nothing). Only the outcomes: the replica's snapshot is left to lapse. Best effort: a Redis
        away at shutdown loses them."""
        tally = self._jobs.take_unpublished()
        if not tally:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                queue_tally(pipe, self._keys, tally, now_s=self._clock())
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("last job outcomes not published: %s: %s", type(exc).__name__, exc)

    def _show(
        self, figures: QueueFigures, dead_letters: int, daily: DailyState, *, paused: bool
    ) -> None:
        m = self._metrics
        for state in QUEUE_STATES:
            counts = figures.by_priority.get(state, {})
            for job_type in m.job_types:
                by_class = counts.get(job_type, {})
                for priority in PRIORITIES:
                    m.queue_jobs.labels(job_type, priority, state).set(by_class.get(priority, 0))
        for job_type, parked in figures.parked.items():
            m.queue_parked.labels(job_type).set(parked)
        m.queue_oldest_due_age.set(figures.oldest_due_age_s)
        m.queue_paused.set(1 if paused else 0)
        m.dead_letters.set(dead_letters)
        m.daily_last_start.set(daily.last_start_ts)
        m.daily_last_success.set(daily.last_success_ts)
        for stage in DAILY_STAGES:
            m.daily_prospects.labels(stage).set(getattr(daily, stage))
        m.quota_used.set(daily.quota_used)
        m.quota_limit.set(daily.quota_limit)

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (RedisError, OSError) as exc:
                self._metrics.redis_errors.labels("sampler").inc()
                self._repeated.warning("redis", "metrics sampler: %s: %s", type(exc).__name__, exc)
            except Exception:
                # A bug here must not end the figures for good: log it with its traceback (an
                # unexpected error) and try again; the sample timestamp shows the staleness.
                log.exception("metrics sampler failed")
            else:
                self._repeated.clear()
            await asyncio.sleep(self.interval_s)
