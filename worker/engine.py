"""The engine's worker: arq's `Worker` with four named changes, and nothing else of arq touched.

1. `finish_failed_job`: arq fails some jobs before any function runs (expired, undecodable
   bytes, unknown function, deliveries spent). arq calls no hook for those; here the runtime
   dead-letters each one, runs its failure hook and tells the observers, in the same Redis step
   that finishes the job.
2. `start_jobs`: a job id that is not UTF-8 makes arq's worker exit (and every restart exit the
   same way). Such ids are moved to the dead-letter stream instead.
3. Crash recovery: arq keeps a job's in-progress marker for the longest job timeout + 10 s, so a
   killed worker's jobs waited over 10 minutes. Here the marker lives `in_progress_ttl_s` and one
   task per worker renews the markers of all its running jobs in one pipelined call, with their
   type leases (worker/limits.py).
4. Redis outages: arq's poll loop exits on the first connection error. Here the loop waits for
   Redis to come back, and finishing a job retries through a short blip.
5. The queue's order (worker/queueorder.py): jobs a worker starts leave the head of the queue
   (after `start_jobs`, and with each renewal), and a job that did not finish (a retry, a
   deferral, a shutdown cancellation) is re-scored in its priority class by `finish_job` instead
   of arq's `zincrby`, which would drop the class. A task promotes due deferred jobs.

`arq worker.WorkerSettings` builds `arq.worker.Worker` by name, so `use_in_arq_cli` points that
name at this class (see worker/__init__.py). Config arrives through arq's own `ctx` argument.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import arq.worker
from arq.worker import Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from worker.arqjobs import IN_PROGRESS_KEY_PREFIX, JOB_KEY_PREFIX, RETRY_KEY_PREFIX
from worker.queueorder import QueueOrder
from worker.runtime import Runtime
from worker.serializer import JobFailed

log = logging.getLogger("prospect_worker.engine")

CTX_CONFIG = "engine_config"
CTX_ORDER = "queue_order"  # set by on_startup: without it, arq's own order applies
PROMOTE_IDLE_S, PROMOTE_MIN_S = 1.0, 0.1
# WatchError: redis-py reports a connection lost during WATCH as one.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, WatchError, ConnectionError, OSError)
T = TypeVar("T")


@dataclass(frozen=True)
class EngineConfig:
    in_progress_ttl_s: float
    renew_s: float
    # How long finishing a job keeps retrying through a Redis blip before giving up (the job
    # then runs again once its in-progress marker lapses: at least once).
    finish_patience_s: float = 15.0


class EngineWorker(Worker):
    # No __init__ of its own: arq's CLI picks the keyword arguments it passes by the signature
    # of `arq.worker.Worker`, which is this class once `use_in_arq_cli` has run.
    config = EngineConfig(20.0, 5.0)
    loop_tick = 0.0  # monotonic time of the poll loop's last pass: /healthz reads it
    redis_down_since: float | None = None

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.ctx["runtime"]
        return runtime

    @property
    def order(self) -> QueueOrder | None:
        order: QueueOrder | None = self.ctx.get(CTX_ORDER)
        return order

    async def main(self) -> None:
        # arq keeps the ctx it was given; a copy keeps per-worker state (the runtime) apart
        # when several workers are built from one settings class.
        self.ctx = dict(self.ctx)
        self.config = self.ctx.get(CTX_CONFIG) or self.config
        self.in_progress_timeout_s = self.config.in_progress_ttl_s
        self.loop_tick = time.monotonic()
        self._finishing: set[str] = set()
        self._deferred_one = asyncio.Event()
        renewer = asyncio.create_task(self._renew_in_progress(), name="renew-in-progress")
        promoter = asyncio.create_task(self._promote_deferred(), name="promote-deferred")
        try:
            await super().main()
        finally:
            renewer.cancel()
            promoter.cancel()

    # --- 4. Redis outages ---------------------------------------------------------------------

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (*REDIS_DOWN, RedisError) as exc:
            # Any Redis error here (LOADING after a restart, a dropped WATCH, a job task whose
            # finishing failed) is the server being away, not this loop being wrong.
            await self._redis_unavailable(exc)
        else:
            self.loop_tick = time.monotonic()
            if self.redis_down_since is not None:
                log.warning(
                    "Redis is back after %.1f s; taking jobs again",
                    time.monotonic() - self.redis_down_since,
                )
                self.redis_down_since = None

    async def _redis_unavailable(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.loop_tick = now  # the loop is alive, only Redis is away (/readyz says so)
        if self.redis_down_since is None:
            self.redis_down_since = now
            log.warning("Redis unavailable (%s); waiting for it", type(exc).__name__)
        # Back off gently while it is away: at most one attempt a second.
        await asyncio.sleep(min(1.0, 0.1 + (now - self.redis_down_since) / 10))

    async def finish_job(self, job_id: str, finish: bool, *args: Any) -> None:
        # arq's arguments after `finish`: result data, result timeout, keep result forever,
        # incr_score (its re-score of a retry), keep_in_progress.
        delay_s = self.runtime.retry_delays.pop(job_id, 0.0) if "runtime" in self.ctx else 0.0
        order = self.order
        if finish or order is None:
            await self._patiently(
                lambda: super(EngineWorker, self).finish_job(job_id, finish, *args)
            )
            return
        unscored = (*args[:3], None, *args[4:])  # the re-score is ours: in the job's class
        self._finishing.add(job_id)
        try:
            await self._patiently(
                lambda: super(EngineWorker, self).finish_job(job_id, finish, *unscored)
            )
            now_ms = int(time.time() * 1000)
            if await self._patiently(lambda: order.reschedule(job_id, now_ms, int(delay_s * 1000))):
                self._deferred_one.set()
        finally:
            self._finishing.discard(job_id)

    # --- 5. the queue's order -----------------------------------------------------------------

    def _out_of_head_until_ms(self) -> int:
        return int((time.time() + self.config.in_progress_ttl_s) * 1000)

    async def _promote_deferred(self) -> None:
        wait = PROMOTE_IDLE_S
        while True:
            with contextlib.suppress(TimeoutError):  # woken early when this worker defers
                await asyncio.wait_for(self._deferred_one.wait(), wait)
            self._deferred_one.clear()
            order, wait = self.order, PROMOTE_IDLE_S
            if order is None or self._pool is None:
                continue
            now_ms = int(time.time() * 1000)
            try:
                _, next_due = await order.promote(now_ms)
            except REDIS_DOWN as exc:
                log.warning("could not promote deferred jobs (%s)", type(exc).__name__)
                continue
            if next_due is not None:
                wait = min(PROMOTE_IDLE_S, max(PROMOTE_MIN_S, (next_due - now_ms) / 1000))

    async def _patiently(self, step: Callable[[], Awaitable[T]]) -> T:
        deadline = time.monotonic() + self.config.finish_patience_s
        delay = 0.1
        while True:
            try:
                return await step()
            except REDIS_DOWN:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    # --- 3. crash recovery --------------------------------------------------------------------

    async def _renew_in_progress(self) -> None:
        ttl_ms = int(self.config.in_progress_ttl_s * 1000)
        while True:
            await asyncio.sleep(self.config.renew_s)
            running = [job_id for job_id, task in self.tasks.items() if not task.done()]
            if not running or self._pool is None:
                continue
            order = self.order
            try:
                async with self.pool.pipeline(transaction=False) as pipe:
                    for job_id in running:
                        pipe.pexpire(IN_PROGRESS_KEY_PREFIX + job_id, ttl_ms)
                    # The type leases of those jobs lapse with their markers, so a dead
                    # worker's leases free up as soon as its jobs may run again.
                    self.runtime.leases.renew(pipe)
                    if order is not None:
                        staying = [job_id for job_id in running if job_id not in self._finishing]
                        order.keep_out_of_head(pipe, staying, self._out_of_head_until_ms())
                    await pipe.execute()
            except REDIS_DOWN as exc:
                log.warning("could not renew %d running jobs (%s)", len(running), exc)

    # --- 2. job ids that are not UTF-8 --------------------------------------------------------

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        good: list[bytes] = []
        for raw_id in job_ids:
            try:
                raw_id.decode()
            except UnicodeDecodeError:
                await self._quarantine(raw_id)
            else:
                good.append(raw_id)
        # arq waits for a free slot before each id it read, so ids beyond the free slots
        # would start later in a stale order (behind a reply enqueued since): take only as
        # many as are free; the next poll reads the rest afresh.
        good = good[: max(0, self.max_jobs - self.job_counter)]
        before = dict(self.tasks)
        await super().start_jobs(good)
        started = [job_id for job_id, task in self.tasks.items() if before.get(job_id) is not task]
        order = self.order
        if started and order is not None:
            # 5: the started jobs leave the head, so idle replicas read runnable ids there.
            now_ms = int(time.time() * 1000)
            await order.move_started(started, now_ms, self._out_of_head_until_ms())

    async def _quarantine(self, raw_id: bytes) -> None:
        """Dead-letter a job whose id cannot be a str, and take it off the queue."""
        job_key = JOB_KEY_PREFIX.encode() + raw_id
        raw_job = await self.pool.get(job_key)
        await self.runtime.dead_letters.add(
            job_id=raw_id.decode("utf-8", "backslashreplace"),
            function="unknown",
            kind="poison",
            error_type="MalformedJob",
            error="the job id is not UTF-8",
            tries=0,
            raw=raw_id + b" " + (raw_job or b""),
        )
        async with self.pool.pipeline(transaction=True) as pipe:
            pipe.zrem(self.queue_name, raw_id)
            pipe.delete(job_key, RETRY_KEY_PREFIX.encode() + raw_id)
            await pipe.execute()
        log.error("job id %r is not UTF-8: dead-lettered", raw_id[:80])

    # --- 1. failures arq decides before running a job -----------------------------------------

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        raw_job = await self.pool.get(JOB_KEY_PREFIX + job_id)
        deliveries = int(await self.pool.get(RETRY_KEY_PREFIX + job_id) or 0)
        reason = _reason(self, result_data)
        keep_ms = int(self.keep_result_s * 1000) if self.keep_result_s > 0 else 0
        await self.runtime.record_arq_failure(
            job_id=job_id,
            raw_job=raw_job,
            reason=reason,
            deliveries=deliveries,
            result=result_data if keep_ms else None,
            result_ttl_ms=keep_ms,
        )


def _reason(worker: Worker, result_data: bytes | None) -> str:
    """arq's own words for the failure, read back from the result record it made."""
    if result_data is None or worker.job_deserializer is None:
        return "failed by arq"
    try:
        result = worker.job_deserializer(result_data).get("r")
    except ValueError:
        return "failed by arq"
    if isinstance(result, JobFailed):
        return result.message or result.error_type
    return str(result)


def use_in_arq_cli() -> None:
    """arq 0.28's CLI (`arq NAME`, `arq --check NAME`) calls `create_worker`/`check_health`,
    which build `arq.worker.Worker` by its module name: point it at the engine's worker."""
    arq.worker.Worker = EngineWorker  # type: ignore[misc]
