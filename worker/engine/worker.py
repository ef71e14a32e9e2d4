"""The engine's worker: arq's `Worker` with the changes named in `CHANGES`, nothing else touched.

Each change below is headed by its name in `CHANGES`, and so is its section in the class.

Failures arq decides (`finish_failed_job`): arq fails some jobs before any function runs
   (expired, undecodable bytes, unknown function, deliveries spent) and calls no hook for
   those; here the runtime dead-letters each one, runs its failure hook and tells the observers,
   in the same Redis step that finishes the job.
Ids that are not UTF-8 (`start_jobs`): such a job id makes arq's worker exit (and every restart
   exit the same way); here it is moved to the dead-letter stream instead.
Crash recovery: arq keeps a job's in-progress marker for the longest job timeout + 10 s, so a
   killed worker's jobs waited over 10 minutes. Here the marker lives `in_progress_ttl_s` and one
   task per worker renews the markers of all its running jobs in one pipelined call, with their
   type leases (worker/scheduling/limits.py).
Redis outages: arq's poll loop exits on the first connection error. Here the loop waits for
   Redis to come back, and finishing a job retries through a short blip; a warning repeated
   meanwhile shows once per `repeat_warning_s`, with a count. At start, a refused password or a
   Redis still unreachable after arq's retries is one line and exit 1 (worker/engine/startup.py).
Shutdown: arq cancels each job's whole task, bookkeeping included. Here a shutdown cancels
   the job function only, so a job's result is always written (see `_cancel_for_shutdown`);
   and it waits for running jobs only, not for ended ones the next poll would have cleared.
   arq's `start_jobs` goes on claiming a batch's ids after the signal; here a batch is one
   step (Batch claims) that no signal lands inside, and the grace period waits for every job
   it started.
Queue order (worker/scheduling/queueorder.py): jobs a worker starts leave the head of the queue
   (in the step that claims them, and with each renewal), a worker takes only as many ids as
   it has free slots, and a job that did not finish (a retry, a deferral, a shutdown
   cancellation) is re-scored in its priority class by `finish_job` instead of arq's
   `zincrby`, which would drop the class. A task promotes due deferred jobs. A deferral is
   not counted in arq's `jobs_retried` (its health record and shutdown line).
Fast start: a task listens on the wake-up channel the project's enqueuers publish to
   (`WorkerKeys.wake`) and, when free slots allow, reads the due head and calls `start_jobs` at
   once instead of waiting for the next poll; a plain arq client's job is found by the poll as
   before. While the last read of the head filled every free slot (a backlog), slots that free
   up are refilled the same way, a tenth of `max_jobs` at a time at least.
   "Due" is arq's own rule (`arqjobs.due_now_ms`: the time in ms, rounded): a job arq
   scored within the last millisecond is due by it, where a truncated time would say it is not
   and leave the job to the next poll (1 idle start in 100 to 300 waited a whole poll that way).
Pause (worker/scheduling/pause.py): the poll loop reads the pause switch at most twice a
   second; while the queue is paused it sets arq's own `allow_pick_jobs` off and `run_cron`
   enqueues nothing (a tick missed meanwhile is enqueued on resume); paused types are deferred
   by the runtime, and put back behind the due jobs rather than in their class (Queue order),
   so a paused type's backlog never holds the head while other types wait. After a shutdown
   signal the switch no longer turns `allow_pick_jobs` back on.
Fencing (worker/runtime/fencing.py, jobs/fencing.py): a claim writes the worker's token (its id and
   a counter) into the job's in-progress marker, in one Lua step with arq's checks (marker
   absent, job due); arq wrote `1`. A job id this worker is still running is never claimed
   again (arq's `run_job` then failed the first delivery on a `KeyError`). The renewal extends
   only markers that still hold this worker's token and reports the others lost; finishing a
   job (arq's result, retry and queue writes) is one Lua step that does nothing unless the
   marker still holds the job's token.
Parking (worker/scheduling/limits.py): a job whose type is at its limit is parked by the lease
   script instead of deferred to be claimed again and again; the step that finishes a job drops
   its type lease and hands the slot to the type's next parked job in priority order (its queue
   place back, a lease in its name), and publishes a wake-up. A task sweeps every `renew_s`: the
   slots of lapsed leases (a dead worker's) go to parked jobs. A parked job is not re-scored
   when it ends its try (the lease script moved it out of reach).
Batch claims: arq claims each id in its own WATCH/MULTI transaction, then reads the job; here a
   poll's ids are claimed in one Lua step (markers with tokens, scores out of the head) that
   also does arq's read of each job (its record, its delivery count, its abort mark: `run_job`
   is answered from it, worker/engine/claimread.py), takes its type lease and writes its
   progress record's `running` stage, so a job's start costs no round trip of its own. A job's
   type lease is dropped in the step that finishes it, and the jobs that end while one finish
   call is in flight are finished together in the next (worker/engine/together.py).

`arq worker.WorkerSettings` builds `arq.worker.Worker` by name, so `use_in_arq_cli` points that
name at this class (see worker/__init__.py). Config arrives through arq's own `ctx` argument.
tests/unit/test_arq_canary.py pins every arq internal this relies on.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from signal import Signals
from typing import Any, NamedTuple, TypeVar, cast

import arq.worker
from arq.connections import ArqRedis
from arq.utils import to_ms
from arq.worker import Worker
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from worker.engine.arqjobs import (
    ABORT_SET,
    CRON_PREFIX,
    IN_PROGRESS_KEY_PREFIX,
    JOB_KEY_PREFIX,
    RESULT_KEY_PREFIX,
    RETRY_KEY_LIFE_S,
    RETRY_KEY_PREFIX,
    cron_name,
    due_now_ms,
)
from worker.engine.claimread import PENDING, ClaimedRead, PoolWithRead
from worker.engine.serializer import JobFailed
from worker.engine.startup import connect
from worker.engine.together import Together
from worker.observability.log_setup import RepeatedWarnings
from worker.runtime.fencing import CTX_OWNERSHIP, Ownership, worker_id
from worker.runtime.progress import PROGRESS_TTL_S
from worker.runtime.runtime import NOT_READ, Runtime, ShiftRead
from worker.scheduling.limits import HAND_OVER, PARKED_SET_LIFE_MS, HeldLease
from worker.scheduling.pause import ALL, REFRESH_S, PauseSwitch
from worker.scheduling.queueorder import QueueOrder
from worker.tasks import stop_tasks

log = logging.getLogger("prospect_worker.engine")

# The engine's changes to arq's Worker, by name, with one line each: the docs render this list.
CHANGES: tuple[tuple[str, str], ...] = (
    ("Failures arq decides", "a job arq fails before running it is dead-lettered, with its hook"),
    ("Ids that are not UTF-8", "such a job id is dead-lettered instead of stopping the worker"),
    ("Crash recovery", "a killed worker's jobs run again within the in-progress TTL"),
    ("Redis outages", "the poll loop waits for Redis; finishing a job retries through a blip"),
    ("Shutdown", "a shutdown cancels job functions only, so every result is written"),
    ("Queue order", "priority classes survive retries; started jobs leave the head"),
    (
        "Fast start",
        "an enqueue wakes a free worker, and a backlog refills freed slots, not at the next poll",
    ),
    ("Pause", "the pause switch stops picking jobs and cron ticks, or paused types"),
    ("Fencing", "a job's token in its marker; a worker that lost a job calls and records nothing"),
    ("Parking", "a job whose type is full waits parked; a freed lease hands it the slot"),
    (
        "Batch claims",
        "a poll's due jobs are claimed and read in one step; jobs ending together finish in one",
    ),
)

CTX_CONFIG = "engine_config"
CTX_ENGINE = "engine"  # the worker itself, so /healthz can read its poll loop's last pass
CTX_ORDER = "queue_order"  # set by on_startup: without it, arq's own order applies
CTX_PAUSE = "pause_switch"  # set by on_startup: without it, nothing is ever paused
CTX_WAKE = "wake_channel"  # set by on_startup: without it, only the poll finds new jobs
WAKE_LISTEN_S = 1.0
PROMOTE_IDLE_S, PROMOTE_MIN_S = 1.0, 0.1
# WatchError: redis-py reports a connection lost during WATCH as one.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, WatchError, ConnectionError, OSError)
T = TypeVar("T")

# arq's claim (`start_jobs`: per id WATCH the marker, EXISTS, ZSCORE, MULTI, PSETEX '1') for a
# whole batch as one step that writes each claimer's token and, with the queue's order on, moves
# each claimed job out of the queue's head (Queue order). With the job types' limits given, a
# job's type is read from its record (arq's JSON: the engine's serializer), and the job takes
# one of its type's leases here or, the type being full, is parked instead of claimed (Parking).
# A claimed job also gets arq's own read (the start of `run_job`: GET the record, INCR and
# EXPIRE the delivery count, ZREM the abort mark; worker/engine/claimread.py) and, holding its
# lease, the progress record's `running` stage (worker/runtime/progress.py), unless its type is
# paused or arq will fail the delivery (over its max tries, aborted).
# KEYS: queue. ARGV: now (ms), marker life (ms), out-of-head score ('' leaves scores alone),
# marker prefix, job prefix, lease set prefix, parked set prefix, lease (ms), a parked job's
# queue score, the parked set's life (ms), the number of limits, the cron prefix, the priority
# key prefix ('' reads none), the delivery count prefix, its life (s), the abort set ('' aborts
# off), the progress prefix ('' writes none), its life (s), then per type its name, limit and
# the last delivery that runs (0: none, paused), then per job its id and token.
# Returns per job its score (nil: running elsewhere, not due, or parked), the type whose lease
# it took (nil: none), its kept priority shift (Queue order; nil: none), its record (nil:
# none), its delivery count, its abort mark (0 or 1) and 1 if the `running` stage was written
# (else 0); then the number of jobs parked.
_CLAIM = (
    HAND_OVER
    + """
local now, lease_ms = tonumber(ARGV[1]), tonumber(ARGV[8])
local limits, runs, first = {}, {}, 19 + 3 * tonumber(ARGV[11])
for i = 19, first - 1, 3 do
  limits[ARGV[i]] = tonumber(ARGV[i + 1])
  runs[ARGV[i]] = tonumber(ARGV[i + 2])
end
local function decode(raw)
  if not raw then return nil end
  local ok, job = pcall(cjson.decode, raw)
  if not ok or type(job) ~= 'table' or type(job['f']) ~= 'string' then return nil end
  return job
end
local function job_type(job)
  local name = job['f']
  if string.sub(name, 1, #ARGV[12]) == ARGV[12] then name = string.sub(name, #ARGV[12] + 1) end
  return name
end
local out, parked = {}, 0
for i = first, #ARGV, 2 do
  local id, marker, score, leased, shift = ARGV[i], ARGV[4] .. ARGV[i], false, false, false
  local raw, tries, aborted, running = false, 0, 0, 0
  if redis.call('EXISTS', marker) == 0 then
    local kept = redis.call('ZSCORE', KEYS[1], id)
    if kept and tonumber(kept) <= now then
      score = kept
      raw = redis.call('GET', ARGV[5] .. id)
      local job = next(limits) and decode(raw)
      local name = job and job_type(job)
      local limit = name and limits[name]
      if limit then
        local leases, waiting = ARGV[6] .. name, ARGV[7] .. name
        if not redis.call('ZSCORE', leases, id) then
          hand_over(leases, waiting, KEYS[1], limit, now, lease_ms)
        end
        if redis.call('ZSCORE', leases, id) or redis.call('ZCARD', leases) < limit then
          redis.call('ZADD', leases, now + lease_ms, id)
          redis.call('PEXPIRE', leases, lease_ms)
          redis.call('ZREM', waiting, id)
          leased = name
        else
          redis.call('ZADD', KEYS[1], 'XX', ARGV[9], id)
          redis.call('ZADD', waiting, kept, id)
          redis.call('PEXPIRE', waiting, ARGV[10])
          parked, score, raw = parked + 1, false, false
        end
      end
      if score then
        redis.call('SET', marker, ARGV[i + 1], 'PX', ARGV[2])
        if ARGV[3] ~= '' then redis.call('ZADD', KEYS[1], 'XX', ARGV[3], id) end
        if ARGV[13] ~= '' then shift = redis.call('GET', ARGV[13] .. id) end
        tries = redis.call('INCR', ARGV[14] .. id)
        redis.call('EXPIRE', ARGV[14] .. id, ARGV[15])
        if ARGV[16] ~= '' then aborted = redis.call('ZREM', ARGV[16], id) end
        local delivery = tries
        if type(job) == 'table' and type(job['t']) == 'number' and job['t'] > tries then
          delivery = job['t']
        end
        if leased and ARGV[17] ~= '' and aborted == 0 and delivery <= runs[leased] then
          local progress = ARGV[17] .. id
          redis.call('HSET', progress, 'stage', 'running', 'job_try', delivery,
            'counters', '{}', 'updated_ms', ARGV[1])
          redis.call('EXPIRE', progress, ARGV[18])
          running = 1
        end
      end
    end
  end
  out[#out + 1] = score
  out[#out + 1] = leased
  out[#out + 1] = shift
  out[#out + 1] = raw
  out[#out + 1] = tries
  out[#out + 1] = aborted
  out[#out + 1] = running
end
out[#out + 1] = parked
return out
"""
)

# KEYS: markers. ARGV: marker life (ms), then each marker's token. 1 per marker still ours
# (extended), 0 per marker lapsed or holding another worker's token (left alone).
_RENEW = """
local kept = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    kept[i] = 1
  else
    kept[i] = 0
  end
end
return kept
"""

# arq's `finish_job` as one step per job, done only while the marker holds the job's token, with
# the drop of the job's type lease, whose slot goes to the type's next parked job (Parking); the
# jobs that ended together are finished in one call (`Together`), each in its own protected
# call, so a job whose keys fail (a key of the wrong type) fails alone.
# Per job, KEYS: marker, result, retry count, job, abort set, queue, type leases, parked set.
# ARGV: token, job id, finish ('1' or ''), result ('' none), result life ms ('' forever),
#       marker life to keep ms ('' deletes it), re-score ('' none), the type's limit ('' no
#       lease held), now ms, lease ms, wake-up channel ('' none). Returns per job 1, 0 if
#       refused, or the error's message.
_FINISH_KEYS, _FINISH_ARGS = 8, 11
_FINISH = (
    HAND_OVER
    + """
local function finish(K, A)
  if redis.call('GET', K[1]) ~= A[1] then return 0 end
  if A[6] == '' then
    redis.call('DEL', K[1])
  else
    redis.call('PEXPIRE', K[1], A[6])
  end
  if A[3] == '1' then
    if A[4] ~= '' then
      if A[5] == '' then
        redis.call('SET', K[2], A[4])
      else
        redis.call('SET', K[2], A[4], 'PX', A[5])
      end
    end
    redis.call('DEL', K[3], K[4])
    redis.call('ZREM', K[5], A[2])
    redis.call('ZREM', K[6], A[2])
  elseif A[7] ~= '' then
    redis.call('ZINCRBY', K[6], A[7], A[2])
  end
  if A[8] ~= '' then
    redis.call('ZREM', K[7], A[2])
    local handed = hand_over(K[7], K[8], K[6], tonumber(A[8]), tonumber(A[9]), tonumber(A[10]))
    if handed > 0 and A[11] ~= '' then redis.call('PUBLISH', A[11], 'unparked') end
  end
  return 1
end
local out = {}
for j = 0, #KEYS / 8 - 1 do
  local K = {unpack(KEYS, j * 8 + 1, j * 8 + 8)}
  local A = {unpack(ARGV, j * 11 + 1, j * 11 + 11)}
  local ok, done = pcall(finish, K, A)
  if not ok then
    if type(done) == 'table' then done = done['err'] end
    done = tostring(done)
  end
  out[j + 1] = done
end
return out
"""
)


@dataclass(frozen=True)
class EngineConfig:
    in_progress_ttl_s: float
    renew_s: float
    # How long finishing a job keeps retrying through a Redis blip before giving up (the job
    # then runs again once its in-progress marker lapses: at least once).
    finish_patience_s: float = 15.0
    # A warning repeated while Redis is away shows at most once per this long, with a count.
    repeat_warning_s: float = 30.0


# One job's keys and arguments to the finish script.
FinishCall = tuple[list[str], list[str | int | bytes]]


class ArqFinish(NamedTuple):
    """arq's arguments to `finish_job` after the job id, as arq passes them."""

    finish: bool
    result_data: bytes | None
    result_timeout_s: float | None
    keep_result_forever: bool
    incr_score: int | None
    keep_in_progress: float | None


class EngineWorker(Worker):
    # No __init__ of its own: arq's CLI picks the keyword arguments it passes by the signature
    # of `arq.worker.Worker`, which is this class once `use_in_arq_cli` has run.
    config = EngineConfig(20.0, 5.0)
    loop_tick = 0.0  # monotonic time of the poll loop's last pass: /healthz reads it
    paused: frozenset[str] = frozenset()  # what the pause switch said at its last read
    stopping = False  # a shutdown signal came: take no more jobs
    _listening = False  # the wake-up listener runs
    _scripts_loaded = False  # the engine's Lua scripts (change 9) are loaded
    _pause_read_at = float("-inf")
    parked_total = 0  # jobs parked by this worker's claims (Parking): never started
    backlog = False  # the last read of the head filled every free slot: more may be due
    redis_down_since: float | None = None

    @property
    def ending(self) -> set[str]:
        """Ids of jobs whose function has ended and whose bookkeeping is under way."""
        jobs: set[str] = self.__dict__.setdefault("_ending_jobs", set())
        return jobs

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.ctx["runtime"]
        return runtime

    @property
    def order(self) -> QueueOrder | None:
        order: QueueOrder | None = self.ctx.get(CTX_ORDER)
        return order

    @property
    def ownership(self) -> Ownership:
        ownership: Ownership = self.ctx[CTX_OWNERSHIP]
        return ownership

    def _script(self, source: str) -> AsyncScript:
        scripts: dict[str, AsyncScript] = self.__dict__.setdefault("_scripts", {})
        if source not in scripts:
            scripts[source] = self.pool.register_script(source)
        return scripts[source]

    async def _load_scripts(self) -> None:
        """Load the engine's scripts before the first claim, as on_startup loads the others:
        fakeredis (the in-process fallback) drops the connection on an unknown EVALSHA instead
        of answering NOSCRIPT, so the client could never load them itself."""
        if self._scripts_loaded:
            return
        for source in (_CLAIM, _RENEW, _FINISH):
            await self.pool.script_load(self._script(source).script)
        self._scripts_loaded = True

    async def main(self) -> None:
        # arq keeps the ctx it was given; a copy keeps per-worker state (the runtime) apart
        # when several workers are built from one settings class.
        self.ctx = dict(self.ctx)
        self.ctx[CTX_ENGINE] = self
        if self._pool is None:  # arq's own start would retry a wrong password, then trace back
            self._pool = await connect(
                self.redis_settings,
                job_serializer=self.job_serializer,
                job_deserializer=self.job_deserializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        self.config = self.ctx.get(CTX_CONFIG) or self.config
        self.in_progress_timeout_s = self.config.in_progress_ttl_s
        self.ctx[CTX_OWNERSHIP] = Ownership(
            worker_id(),
            self.config.in_progress_ttl_s,
            marker_key=lambda job_id: IN_PROGRESS_KEY_PREFIX + job_id,
        )
        self.loop_tick = time.monotonic()
        self.repeated = RepeatedWarnings(log, self.config.repeat_warning_s)
        self._deferred_one = asyncio.Event()
        self._slot_freed = asyncio.Event()
        job_end = self.on_job_end

        async def ending(ctx: dict[str, Any]) -> None:
            self.ending.add(ctx["job_id"])  # from here on, the job's bookkeeping runs
            if job_end is not None:
                await job_end(ctx)

        self.on_job_end = ending
        # The wake-up listener joins these at the first poll, once on_startup has run.
        self._background = [
            asyncio.create_task(self._renew_in_progress(), name="renew-in-progress"),
            asyncio.create_task(self._promote_deferred(), name="promote-deferred"),
            asyncio.create_task(self._refill_slots(), name="refill-slots"),
        ]
        try:
            await super().main()
        finally:
            await stop_tasks(self._background)

    # --- Redis outages ------------------------------------------------------------------------

    async def _poll_iteration(self) -> None:
        try:
            await self._load_scripts()  # before the wake-up listener can claim anything
            self._listen_for_wake()
            await self._read_pause()
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
                self.repeated.clear()

    async def _redis_unavailable(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.loop_tick = now  # the loop is alive, only Redis is away (/readyz says so)
        if self.redis_down_since is None:
            self.redis_down_since = now
            log.warning("Redis unavailable (%s); waiting for it", type(exc).__name__)
        # Back off gently while it is away: at most one attempt a second.
        await asyncio.sleep(min(1.0, 0.1 + (now - self.redis_down_since) / 10))

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        delay_s, parked, paused, lease = 0.0, False, False, None
        if "runtime" in self.ctx:
            runtime = self.runtime
            delay_s = runtime.retry_delays.pop(job_id, 0.0)
            if job_id in runtime.deferred:
                runtime.deferred.discard(job_id)
                self.jobs_retried -= 1  # arq counted the deferral's Retry as a retry: it was none
            parked = job_id in runtime.parked
            runtime.parked.discard(job_id)
            runtime.started_by_claim.discard(job_id)
            paused = job_id in runtime.paused_back
            runtime.paused_back.discard(job_id)
            lease = runtime.leases.hand_over(job_id)  # Parking: dropped by the finish step
        order = self.order
        token = self.ownership.token(job_id)
        # A job that did not finish is re-scored in its class below, not by arq's `incr_score`;
        # a parked one keeps the score its lease script gave it.
        rescore = None if (order is not None or parked) and not finish else incr_score
        record = ArqFinish(
            finish, result_data, result_timeout_s, keep_result_forever, rescore, keep_in_progress
        )
        try:
            if not await self._patiently(lambda: self._finish(job_id, token or "", record, lease)):
                return  # another worker owns it now: it is theirs to re-queue
            if finish or order is None or parked:
                return
            now_ms = due_now_ms()
            delay_ms, in_class = int(delay_s * 1000), not paused
            if await self._patiently(
                lambda: order.reschedule(job_id, now_ms, delay_ms, in_class=in_class)
            ):
                self._deferred_one.set()
        finally:
            self.ending.discard(job_id)
            if token is not None:
                self.ownership.released(job_id, token)

    async def _finish(
        self, job_id: str, token: str, record: "ArqFinish", lease: HeldLease | None
    ) -> bool:
        """arq's finish_job, fenced (Fencing): False, and nothing written, when the marker no
        longer holds `token` ("" for a job this worker never claimed: nothing is written). The
        job's type lease (`lease`) is dropped in the same step (Parking)."""
        (
            finish,
            result_data,
            result_timeout_s,
            keep_result_forever,
            incr_score,
            keep_in_progress,
        ) = record
        result_ms = None if keep_result_forever else to_ms(result_timeout_s)
        keys = [
            IN_PROGRESS_KEY_PREFIX + job_id,
            RESULT_KEY_PREFIX + job_id,
            RETRY_KEY_PREFIX + job_id,
            JOB_KEY_PREFIX + job_id,
            ABORT_SET,
            self.queue_name,
            lease.leases_key if lease else self.queue_name,
            lease.parked_key if lease else self.queue_name,
        ]
        args: list[str | int | bytes] = [
            token,
            job_id,
            "1" if finish else "",
            result_data or b"",
            "" if result_ms is None else result_ms,
            "" if keep_in_progress is None else to_ms(keep_in_progress) or 0,
            "" if incr_score is None else incr_score,
            *self._lease_args(lease),
        ]
        finished = await self._finishes.call((keys, args))
        if not finished:
            log.warning("job %s: not finished here, another worker owns it now", job_id)
        return finished

    @property
    def _finishes(self) -> "Together[FinishCall, bool]":
        finishes: Together[FinishCall, bool] | None = self.__dict__.get("_together")
        if finishes is None:
            finishes = self.__dict__["_together"] = Together(self._finish_together)
        return finishes

    async def _finish_together(self, calls: Sequence[FinishCall]) -> list[bool | Exception]:
        """The finishes of the jobs that ended together, in one call of the finish script."""
        keys: list[str] = []
        args: list[str | int | bytes] = []
        for job_keys, job_args in calls:
            keys += job_keys
            args += job_args
        answers = await self._script(_FINISH)(keys=keys, args=args)
        # An answer in bytes: this job's keys failed, its own error only.
        return [
            ResponseError(answer.decode(errors="replace"))
            if isinstance(answer, bytes)
            else bool(answer)
            for answer in answers
        ]

    # --- Parking ---------------------------------------------------------------------------------

    def _lease_args(self, lease: HeldLease | None) -> list[str | int]:
        if lease is None:
            return ["", "", "", ""]
        leases = self.runtime.leases
        return [lease.limit, leases.now_ms(), leases.lease_ms, self.ctx.get(CTX_WAKE) or ""]

    # --- Queue order ---------------------------------------------------------------------------

    def _out_of_head_until_ms(self) -> int:
        return int((time.time() + self.config.in_progress_ttl_s) * 1000)

    async def _promote_deferred(self) -> None:
        wait = PROMOTE_IDLE_S
        while True:
            # Woken early when this worker defers. Not `wait_for`: on Python 3.11 it swallows a
            # cancel that lands as the event is set, and the shutdown then waited forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._deferred_one.wait()
            self._deferred_one.clear()
            order, wait = self.order, PROMOTE_IDLE_S
            if order is None or self._pool is None:
                continue
            now_ms = due_now_ms()
            try:
                _, next_due = await order.promote(now_ms)
            except REDIS_DOWN as exc:
                self.repeated.warning(
                    "promote", "could not promote deferred jobs (%s)", type(exc).__name__
                )
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

    # --- Shutdown ------------------------------------------------------------------------------
    # arq cancels its whole per-job task at shutdown, wherever it is: a cancel landing on the
    # job's bookkeeping (the result write) left the job unfinished, to run again to completion
    # once its marker lapsed, and arq's close then exited 1 on the CancelledError. Here a
    # shutdown cancels the job function itself, and bookkeeping under way always completes.

    def _cancel_for_shutdown(self) -> None:
        for job_id, task in self.tasks.items():
            if task.done() or job_id in self.ending:
                continue
            job_task = self.job_tasks.get(job_id)
            # Running: cancel the function (arq records the cancellation and re-queues it).
            # Not started yet: cancel the whole task; its marker lapses and it runs elsewhere.
            (job_task or task).cancel()

    def handle_sig_wait_for_completion(self, signum: Signals) -> None:
        self.stopping = True  # arq turns allow_pick_jobs off; the pause reader must not undo it
        super().handle_sig_wait_for_completion(signum)

    def handle_sig(self, signum: Signals) -> None:
        running = sum(not task.done() for task in self.tasks.values())  # ended ones wait a poll
        log.info("shutdown on %s: cancelling %d running jobs", Signals(signum).name, running)
        self._cancel_for_shutdown()
        if self.main_task is not None:
            self.main_task.cancel()
        if self.on_stop is not None:
            self.on_stop(signum)

    async def _sleep_until_tasks_complete(self) -> None:
        # arq waits for `tasks` to empty, but ended tasks leave it only at a poll; jobs started
        # on a wake-up (fast start) may all have ended between two polls. Wait for running ones,
        # looking again after each wait: the id a batch was claiming when the signal came
        # starts after this first look (`start_jobs` stops the batch after it).
        while running := [task for task in self.tasks.values() if not task.done()]:
            await asyncio.wait(running)  # raises nothing of theirs; the timeout bounds it

    async def _wait_for_tasks_to_complete(self, signum: Signals) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._job_completion_wait):  # see `_promote_deferred`
                await self._sleep_until_tasks_complete()
        self.handle_sig(signum)

    async def close(self) -> None:
        if not self._handle_signals:
            self.handle_sig(Signals.SIGUSR1)  # as arq's close does, before waiting
        if self.tasks:
            # A task cancelled before its job started ends in CancelledError; arq's close
            # would re-raise it. Wait for all of them, then let arq close with none left.
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            self.tasks.clear()
        await super().close()  # its own handle_sig finds nothing left to cancel

    # --- Fast start ----------------------------------------------------------------------------

    def _listen_for_wake(self) -> None:
        if self._listening or CTX_WAKE not in self.ctx or not hasattr(self, "_background"):
            return
        self._listening = True
        self._background.append(
            asyncio.create_task(self._start_on_wake(self.ctx[CTX_WAKE]), name="start-on-wake")
        )

    async def _start_on_wake(self, channel: str) -> None:
        while True:
            try:
                async with self.pool.pubsub() as pubsub:
                    await pubsub.subscribe(channel)
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=WAKE_LISTEN_S
                        )
                        if message is not None:
                            await self._start_now()
            except (*REDIS_DOWN, RedisError) as exc:
                self.repeated.warning(
                    "wake", "wake-up channel lost (%s); polling meanwhile", type(exc).__name__
                )
                await asyncio.sleep(1.0)

    async def _start_now(self) -> None:
        """What arq's poll does to take jobs, at once: the due head, as many as slots are free."""
        free = self.max_jobs - self.job_counter
        if free <= 0 or not self.allow_pick_jobs:
            return
        now_ms = due_now_ms()
        job_ids = await self.pool.zrangebyscore(
            self.queue_name, min=float("-inf"), max=now_ms, start=0, num=free
        )
        await self.start_jobs(job_ids)

    async def _refill_slots(self) -> None:
        """While the head had more due jobs than free slots, slots that free up are filled at
        once, not at the next poll: a worker draining a backlog of short jobs otherwise sat
        idle for most of each poll delay. Slots are taken a tenth of `max_jobs` at a time at
        least, so a busy worker claims in batches, not a job at a time."""
        least = max(1, self.max_jobs // 10)
        while True:
            await self._slot_freed.wait()
            self._slot_freed.clear()
            if not self.backlog or self.max_jobs - self.job_counter < least:
                continue
            try:
                await self._start_now()
            except (*REDIS_DOWN, RedisError):
                self.backlog = False  # the poll loop reports Redis away and takes over

    def _freed_a_slot(self) -> None:
        if self.backlog:
            self._slot_freed.set()

    # --- Pause ---------------------------------------------------------------------------------

    async def _read_pause(self) -> None:
        switch: PauseSwitch | None = self.ctx.get(CTX_PAUSE)
        now = time.monotonic()
        if switch is None or now - self._pause_read_at < REFRESH_S:
            return
        self._pause_read_at = now
        paused = await switch.read()
        if paused != self.paused:
            # A pause is worth a look; a resume is the normal state coming back.
            level = logging.WARNING if paused else logging.INFO
            log.log(level, "pause switch: %s", ", ".join(sorted(paused)) or "nothing paused")
        self.paused = paused
        # A worker draining after SIGTERM stays closed to new jobs whatever the switch says.
        self.allow_pick_jobs = ALL not in paused and not self.stopping
        if "runtime" in self.ctx:
            self.runtime.paused_types = paused - {ALL}

    async def run_cron(self, n: datetime, delay: float, num_windows: int = 2) -> None:
        if ALL in self.paused:
            return  # the tick stays due: it is enqueued once the queue is resumed
        await super().run_cron(n, delay, num_windows)

    # --- Crash recovery ------------------------------------------------------------------------

    async def _renew_in_progress(self) -> None:
        ttl_ms = int(self.config.in_progress_ttl_s * 1000)
        while True:
            await asyncio.sleep(self.config.renew_s)
            await self._sweep_parked()
            tokens = self.ownership.tokens()
            if not tokens or self._pool is None:
                continue
            # Fencing: only markers that still hold this worker's token are extended; the others
            # are reported lost, and their jobs stop at their next step.
            sent_at = time.monotonic()
            try:
                flags = await self._script(_RENEW)(
                    keys=[IN_PROGRESS_KEY_PREFIX + job_id for job_id in tokens],
                    args=[ttl_ms, *tokens.values()],
                )
            except REDIS_DOWN as exc:
                self.repeated.warning(
                    "renew", "could not renew %d running jobs (%s)", len(tokens), exc
                )
                continue
            kept = [job_id for job_id, flag in zip(tokens, flags, strict=True) if int(flag)]
            self.ownership.renewed(
                sent_at, kept, [job_id for job_id in tokens if job_id not in kept], tokens
            )
            await self._renew_alongside(kept)

    async def _sweep_parked(self) -> None:
        """Parking: hand the slots of lapsed leases (a dead worker's, or one handed to a job
        never claimed) to parked jobs, so none waits on a worker that is gone."""
        if "runtime" not in self.ctx or self._pool is None:
            return
        runtime = self.runtime
        try:
            await runtime.leases.sweep(runtime.limits())
        except REDIS_DOWN as exc:
            self.repeated.warning("sweep", "could not sweep parked jobs (%s)", type(exc).__name__)

    async def _renew_alongside(self, kept: list[str]) -> None:
        """The type leases of the jobs still ours lapse with their markers, so a dead worker's
        leases free up as soon as its jobs may run again; those jobs stay out of the head."""
        order = self.order
        try:
            async with self.pool.pipeline(transaction=False) as pipe:
                self.runtime.leases.renew(pipe, kept)
                if order is not None:
                    staying = [job_id for job_id in kept if job_id not in self.ending]
                    order.keep_out_of_head(pipe, staying, self._out_of_head_until_ms())
                await pipe.execute()
        except REDIS_DOWN as exc:
            self.repeated.warning(
                "renew_leases",
                "could not renew the leases of %d running jobs (%s)",
                len(kept),
                exc,
            )

    # --- Ids that are not UTF-8 ----------------------------------------------------------------

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
        # Still running here: its marker lapsed (a stall) and the job came due again. The
        # delivery running it goes on until its next step finds it lost.
        ids = [job_id for raw_id in good if not self._running_here(job_id := raw_id.decode())]
        if not ids:
            self.backlog = False  # the head had nothing to take (Fast start)
        # arq's loop claims every id it was given, even after a shutdown signal or a pause
        # turned `allow_pick_jobs` off: a job claimed then would be cut off at the grace
        # period's end and run again. The batch is one step, so no signal lands inside it.
        if ids and self.allow_pick_jobs:
            await self._claim(ids)

    def _running_here(self, job_id: str) -> bool:
        running = self.tasks.get(job_id)
        return running is not None and not running.done()

    # --- Batch claims ------------------------------------------------------------------------

    async def _claim(self, job_ids: list[str]) -> None:
        """arq's `start_jobs` for these ids (no more than the free slots), claimed and fenced
        in one step (Fencing, Batch claims)."""
        # Counted again here: a wake-up and a poll may both have read the head meanwhile.
        free = max(0, self.max_jobs - self.job_counter)
        self.backlog = len(job_ids) >= free  # Fast start: slots freed are refilled at once
        job_ids = job_ids[:free]
        if not job_ids:
            return
        for _ in job_ids:
            await self.sem.acquire()  # a free slot each: no wait
        self.job_counter += len(job_ids)
        ownership = self.ownership
        tokens = [ownership.new_token() for _ in job_ids]
        args = self._claim_args()
        for job_id, token in zip(job_ids, tokens, strict=True):
            args += [job_id, token]
        sent_at = time.monotonic()
        try:
            answer = await self._script(_CLAIM)(keys=[self.queue_name], args=args)
        except BaseException:
            for _ in job_ids:
                self._release_sem_dec_counter_on_complete()
            raise
        self.parked_total += int(answer[-1])
        reads = self._claimed_reads
        for n, (job_id, token) in enumerate(zip(job_ids, tokens, strict=True)):
            score, leased, shift, record, tries, aborted, running = answer[7 * n : 7 * n + 7]
            if score is None:
                # Running elsewhere, not due, or parked.
                self._release_sem_dec_counter_on_complete()
                continue
            if leased is not None:
                self._leased_at_claim(job_id, leased.decode(), bool(running))
            self._claimed_shifts[job_id] = shift
            reads[job_id] = ClaimedRead(job_id, record, int(tries), int(aborted))
            self._start_task(job_id, token, int(float(score)), sent_at)

    @property
    def _claimed_reads(self) -> dict[str, ClaimedRead]:
        reads: dict[str, ClaimedRead] = self.__dict__.setdefault("_reads", {})
        return reads

    @property
    def pool(self) -> ArqRedis:
        # In a job's `run_job`, the first use is arq's read of the job, which the claim did.
        read = PENDING.get()
        if read is None:
            return cast(ArqRedis, self._pool)
        PENDING.set(None)
        return cast(ArqRedis, PoolWithRead(self._pool, read))

    async def run_job(self, job_id: str, score: int) -> None:
        read = self._claimed_reads.pop(job_id, None)
        if read is not None:
            PENDING.set(read)  # this job's task only: its context is its own
        await super().run_job(job_id, score)

    @property
    def _claimed_shifts(self) -> dict[str, ShiftRead]:
        shifts: dict[str, ShiftRead] = self.__dict__.setdefault("_shifts", {})
        return shifts

    def claimed_shift(self, job_id: str) -> ShiftRead:
        """The job's priority shift as its claim read it (Queue order), once: the runtime's
        queue wait needs no read of its own."""
        return self._claimed_shifts.pop(job_id, NOT_READ)

    def _claim_args(self) -> list[str | int]:
        out_of_head = self._out_of_head_until_ms() if self.order is not None else ""
        args: list[str | int] = [
            due_now_ms(),
            int(self.in_progress_timeout_s * 1000),
            out_of_head,
            IN_PROGRESS_KEY_PREFIX,
            JOB_KEY_PREFIX,
        ]
        limits: Mapping[str, int] = {}
        if "runtime" in self.ctx:  # the runtime's leases: Parking
            runtime = self.runtime
            limits = runtime.limits()
            leases = runtime.leases
            args += [
                leases.leases_prefix,
                leases.parked_prefix,
                leases.lease_ms,
                leases.parked_until_ms(),
                PARKED_SET_LIFE_MS,
            ]
        else:
            args += ["", "", 0, 0, 0]
        order = self.order
        args += [
            len(limits),
            CRON_PREFIX,
            order.priority_prefix if order is not None else "",
            RETRY_KEY_PREFIX,
            RETRY_KEY_LIFE_S,
            ABORT_SET if self.allow_abort_jobs else "",
        ]
        if "runtime" in self.ctx:
            args += [self.runtime.progress_prefix, PROGRESS_TTL_S]
        else:
            args += ["", 0]
        for name, limit in limits.items():
            args += [name, limit, self._last_run(name)]
        return args

    def _last_run(self, name: str) -> int:
        """The last delivery of a type's job that arq runs (0: none, the type is paused): the
        claim writes the `running` stage for those only."""
        if name in self.paused:
            return 0
        functions = [self.functions.get(name), self.functions.get(cron_name(name))]
        return min(
            (self.max_tries if f.max_tries is None else f.max_tries for f in functions if f),
            default=0,
        )

    def _leased_at_claim(self, job_id: str, function: str, running: bool) -> None:
        """The claim took the job's type lease (and wrote its `running` stage): the runtime
        finds it its own, the renewal renews it, and the finish step drops it."""
        runtime = self.runtime
        runtime.leases.held_by(job_id, function, runtime.limits()[function])
        if running:
            runtime.started_by_claim.add(job_id)

    # --- Fencing ---------------------------------------------------------------------------------

    def _start_task(self, job_id: str, token: str, score: int, sent_at: float) -> None:
        ownership = self.ownership
        ownership.claimed(job_id, token, sent_at)
        task = self.loop.create_task(self.run_job(job_id, score))
        task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
        task.add_done_callback(lambda _: self._freed_a_slot())
        task.add_done_callback(lambda _: ownership.released(job_id, token))
        # A task cancelled before its `run_job` started never took its read.
        task.add_done_callback(lambda _: self._claimed_reads.pop(job_id, None))
        self.tasks[job_id] = task

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

    # --- Failures arq decides -----------------------------------------------------------------

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
        self.runtime.started_by_claim.discard(job_id)
        if self.runtime.leases.held(job_id) is not None:  # taken by the claim (Parking)
            await self.runtime.leases.drop(job_id)


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
