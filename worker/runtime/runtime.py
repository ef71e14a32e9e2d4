"""The runtime: the one place that wraps every job and decides its outcome.

It validates the payload, holds one of the job type's leases (its concurrency limit across every
replica, worker/scheduling/limits.py), enforces the timeout, and turns an error into a retry
(exponential backoff with jitter, at least the far side's Retry-After) or a final failure
(dead-letter entry, the job's own failure hook). Failures that arq decides around the runtime
(see worker/engine/worker.py) come back here through `record_arq_failure` and `arq_job_ended`,
so every job ends in exactly one outcome that the observers see.

It keeps its own count of failed tries in Redis (read only when a try fails), so a delivery that
ended in a crash or a shutdown cancellation never spends a retry. A job that meets a shared
limit (its type's leases, a provider's rate) is deferred: back in the queue after the limit's
delay, no try spent (neither ours nor arq's delivery count) and no slot held meanwhile.
Job bodies only raise the errors of `jobs.errors`; they never see arq.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

from arq import Retry
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from jobs.deps import Deps
from jobs.errors import Deferred, InvalidPayload, most_severe
from jobs.fencing import CURRENT, Fence, JobLost, check_fence
from worker.connections import INFRASTRUCTURE_ERRORS
from worker.engine.arqjobs import MalformedJob, decode_job, job_type, take_back_delivery
from worker.engine.serializer import JobFailed
from worker.keys import WorkerKeys
from worker.runtime.deadletter import DeadLetterKind, DeadLetters
from worker.runtime.failures import Failure, RetryPolicy, classify
from worker.runtime.outcomes import UNKNOWN_FUNCTION, JobObserver, JobOutcome, OutcomeKind
from worker.runtime.progress import JobProgress
from worker.runtime.spec import JobSpec
from worker.scheduling.limits import Parked, TypeLeases
from worker.scheduling.pause import PAUSED_RETRY_S
from worker.scheduling.queueorder import became_due_ms

log = logging.getLogger("prospect_worker.runtime")

Payload = TypeVar("Payload", bound=BaseModel)
Result = TypeVar("Result", bound=BaseModel)

# The bookkeeping after our timeout is bounded by this (arq's own timeout, a backstop only,
# leaves room for it: worker/engine/functions.py).
BOOKKEEPING_S = 5.0
TRIES_TTL_S = 2 * 86_400
# Keys of arq's per-job ctx that the runtime uses to hand its decision to the job-end hook.
CTX_OUTCOME, CTX_SPEC, CTX_CANCELLED = "pw_outcome", "pw_spec", "pw_cancelled"
DEFAULT_LEASE_S = 20.0  # the engine passes its in-progress marker's life


class _NotRead:
    """The priority shift was not read with the claim: `due_ms` reads it itself."""


NOT_READ = _NotRead()
ShiftRead = bytes | str | None | _NotRead  # the kept shift as Redis answered (None: none kept)


def about(job_id: str, job_type: str, error_type: str | None = None) -> dict[str, object]:
    """`extra=` for a line about one job: in JSON logs every such line carries these keys."""
    fields: dict[str, object] = {"job_id": job_id, "job_type": job_type}
    if error_type is not None:
        fields["error_type"] = error_type
    return fields


class Runtime:
    """Built once per worker process at startup; arq's ctx carries it to every job."""

    def __init__(
        self,
        deps: Deps,
        redis: Redis,
        keys: WorkerKeys,
        retry: RetryPolicy,
        dead_letters: DeadLetters,
        *,
        specs: Mapping[str, "JobSpec[Any, Any]"],
        observers: Sequence[JobObserver] = (),
        leases: TypeLeases | None = None,
    ) -> None:
        self.deps = deps
        self._redis = redis
        self._keys = keys
        self._retry = retry
        self.dead_letters = dead_letters
        self._specs = dict(specs)
        self._limits = {name: spec.limit for name, spec in self._specs.items()}
        self._observers = tuple(observers)
        self.leases = leases or TypeLeases(redis, keys, lease_s=DEFAULT_LEASE_S)
        # The delay of each job this process handed back to arq with Retry, until the engine
        # re-scores it in its priority class (EngineWorker.finish_job pops it).
        self.retry_delays: dict[str, float] = {}
        # Job types paused by the operator (worker/scheduling/pause.py), as the engine last read
        # them.
        self.paused_types: frozenset[str] = frozenset()
        # Jobs handed back as deferred, not retried, until the engine has told arq so.
        self.deferred: set[str] = set()
        # Of those, the jobs parked by their type's lease script: already out of reach in the
        # queue, so the engine does not re-score them (worker/scheduling/limits.py).
        self.parked: set[str] = set()
        # Of those, the jobs of a paused type: put back behind the due jobs, not in their class.
        self.paused_back: set[str] = set()
        # Jobs whose claim (the engine's) took their type lease and wrote their `running`
        # stage: the runtime takes neither again.
        self.started_by_claim: set[str] = set()

    @property
    def progress_prefix(self) -> str:
        """The key of a job's progress record, less its id: the engine's claim writes it."""
        return self._keys.progress("")

    def limits(self) -> Mapping[str, int]:
        """Each job type's limit: what the engine's claim and sweep hand out leases by."""
        return self._limits

    async def due_ms(
        self,
        job_id: str,
        score_ms: int | None,
        enqueued_ms: int | None,
        kept: ShiftRead = NOT_READ,
    ) -> int | None:
        """When the job became due, its priority class's head start taken off its score
        (worker/scheduling/queueorder.py): the shift kept beside it, as the engine's claim
        read it (`kept`), else one read of it."""
        if score_ms is None:
            return None
        if enqueued_ms is not None and score_ms >= enqueued_ms:
            # Not scored ahead of its enqueue: no head start to take off (no class, or a
            # deferral not promoted yet, scored at its due time), so no read either.
            return score_ms
        try:
            raw = (
                await self._redis.get(self._keys.priority(job_id))
                if isinstance(kept, _NotRead)
                else kept
            )
            shift = int(raw) if raw is not None else None
        except (*INFRASTRUCTURE_ERRORS, ValueError):
            shift = None  # the wait is then measured from the score: a figure, not a decision
        return became_due_ms(score_ms, shift, enqueued_ms, int(time.time() * 1000))

    def _hand_back(self, job_id: str, delay_s: float) -> Retry:
        self.retry_delays[job_id] = delay_s
        return Retry(defer=delay_s)

    def _ended(self, ctx: dict[str, Any] | None, outcome: JobOutcome) -> None:
        if ctx is not None:
            ctx[CTX_OUTCOME] = outcome
        for observer in self._observers:
            observer.ended(outcome)

    # --- a job the runtime runs --------------------------------------------------------------

    async def execute(
        self,
        spec: JobSpec[Payload, Result],
        *,
        job_id: str,
        delivery: int,
        due_ms: int | None,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        ctx: dict[str, Any] | None = None,
        fence: Fence | None = None,
        score_ms: int | None = None,
    ) -> dict[str, Any]:
        """Run one delivery. Under a `fence` (the engine's claim), every call and commit made
        for the job is checked against it; a job found lost ends with nothing recorded. Under
        one, a job whose type is full is parked (by `score_ms`, its queue score when claimed),
        and its lease is dropped by the engine's step that finishes the job."""
        fenced = CURRENT.set(fence)
        try:
            return await self._execute(
                spec, job_id, delivery, due_ms, args, kwargs, ctx, score_ms if fence else None
            )
        except JobLost as lost:
            raise self._lost(spec, ctx, job_id, delivery, lost) from None
        finally:
            CURRENT.reset(fenced)

    async def _execute(
        self,
        spec: JobSpec[Payload, Result],
        job_id: str,
        delivery: int,
        due_ms: int | None,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        ctx: dict[str, Any] | None,
        score_ms: int | None,
    ) -> dict[str, Any]:
        queue_wait = max(0.0, time.time() - due_ms / 1000) if due_ms else None
        for observer in self._observers:
            observer.started(
                job_id=job_id, function=spec.name, job_try=delivery, queue_wait_s=queue_wait
            )
        progress = JobProgress(self._redis, self._keys, job_id, delivery)
        try:
            payload = parse_payload(spec.payload, args, kwargs)
        except InvalidPayload as exc:
            # A poison message: no retry can fix it, and the failure hook cannot read it.
            raw = {"args": list(args), "kwargs": dict(kwargs)}
            raise await self._final(
                spec.name, ctx, job_id, delivery, classify(exc), "poison", progress, raw=raw
            ) from None

        started = time.monotonic()
        try:
            result = await self._run_body(spec, job_id, payload, progress, score_ms)
        except Exception as exc:
            deferral = most_severe(exc)
            if isinstance(deferral, JobLost):
                raise deferral from None
            if isinstance(deferral, Deferred):
                raise await self._defer(spec, ctx, job_id, delivery, deferral, progress) from None
            raise await self._after_failure(
                spec, ctx, job_id, delivery, exc, payload, progress, time.monotonic() - started
            ) from exc
        check_fence()  # its result is refused anyway (the engine's finish checks the token)
        self._ended(
            ctx,
            JobOutcome(
                job_id=job_id,
                function=spec.name,
                kind="succeeded",
                job_try=delivery,
                duration_s=time.monotonic() - started,
            ),
        )
        return result.model_dump(mode="json")

    def _lost(
        self,
        spec: JobSpec[Any, Any],
        ctx: dict[str, Any] | None,
        job_id: str,
        delivery: int,
        lost: JobLost,
    ) -> Exception:
        """The job is another worker's now (or nobody's, its marker lapsed): nothing is recorded,
        no try spent. arq is told to retry; the engine's fenced finish then writes nothing
        unless the marker still holds this delivery's token (then the job is simply re-queued)."""
        log.warning("%s %s stopped, nothing recorded: %s", spec.name, job_id, lost)
        self._ended(
            ctx,
            JobOutcome(
                job_id=job_id,
                function=spec.name,
                kind="lost",
                job_try=delivery,
                error_type="JobLost",
                error=str(lost),
            ),
        )
        return Retry()

    async def _run_body(
        self,
        spec: JobSpec[Payload, Result],
        job_id: str,
        payload: Payload,
        progress: JobProgress,
        score_ms: int | None,
    ) -> Result:
        check_fence()
        if spec.name in self.paused_types:
            raise Deferred(PAUSED_RETRY_S, reason="paused", limit=spec.name)
        # Raises Deferred when the type is at its limit: the job never waits in a slot.
        if job_id in self.started_by_claim:
            self.started_by_claim.discard(job_id)  # the claim took both, in its own step
            return await self._run_timed(spec, job_id, payload, progress)
        try:
            # One round trip: the lease, and the progress record's `running` stage.
            await self.leases.take(
                spec.name,
                job_id,
                spec.limit,
                score_ms=score_ms,
                along=lambda pipe: progress.write_on(pipe, "running"),
            )
        except INFRASTRUCTURE_ERRORS as exc:
            # Redis away for the lease but the job was delivered: run it rather than fail a
            # try on admission; the limit may be exceeded by this job for the blip.
            log.warning(
                "%s %s: type lease not taken (%s), running",
                spec.name,
                job_id,
                exc,
                extra=about(job_id, spec.name, type(exc).__name__),
            )
        return await self._run_timed(spec, job_id, payload, progress)

    async def _run_timed(
        self, spec: JobSpec[Payload, Result], job_id: str, payload: Payload, progress: JobProgress
    ) -> Result:
        try:
            async with asyncio.timeout(spec.timeout_s):
                return await spec.body(self.deps, payload, progress)
        finally:
            if CURRENT.get() is None:  # else the engine's finish drops it, in the same step
                await self._drop_lease(spec, job_id)

    async def _drop_lease(self, spec: JobSpec[Any, Any], job_id: str) -> None:
        try:
            # Shielded: a cancellation (shutdown, timeout) must not cut the call short and
            # leave its connection half used.
            await asyncio.shield(self.leases.drop(job_id))
        except INFRASTRUCTURE_ERRORS as exc:
            # Not renewed any more, the lease lapses by itself within its lease period.
            log.warning(
                "%s %s: lease not dropped (%s)",
                spec.name,
                job_id,
                exc,
                extra=about(job_id, spec.name, type(exc).__name__),
            )

    async def _defer(
        self,
        spec: JobSpec[Any, Any],
        ctx: dict[str, Any] | None,
        job_id: str,
        delivery: int,
        deferral: Deferred,
        progress: JobProgress,
    ) -> Exception:
        """Put the job back for later without spending a try: arq counted this delivery, so the
        count is taken back (a job deferred a thousand times must not hit arq's max tries)."""
        check_fence()
        try:
            await take_back_delivery(self._redis, job_id)
        except INFRASTRUCTURE_ERRORS as exc:
            # Then this deferral costs one of the spare deliveries arq allows (max_redeliveries).
            log.warning(
                "%s %s: delivery count not taken back (%s)",
                spec.name,
                job_id,
                exc,
                extra=about(job_id, spec.name, type(exc).__name__),
            )
        await progress.update(
            "deferred",
            deferred_by=deferral.reason,
            limit=deferral.limit,
            retry_in_s=round(deferral.delay_s, 3),
        )
        self._ended(
            ctx,
            JobOutcome(
                job_id=job_id,
                function=spec.name,
                kind="deferred",
                job_try=delivery,
                retry_in_s=deferral.delay_s,
                deferred_by=deferral.reason,
                limit_name=deferral.limit,
            ),
        )
        self.deferred.add(job_id)
        if isinstance(deferral, Parked):
            self.parked.add(job_id)
        if deferral.reason == "paused":
            self.paused_back.add(job_id)
        return self._hand_back(job_id, deferral.delay_s)

    async def _after_failure(
        self,
        spec: JobSpec[Payload, Any],
        ctx: dict[str, Any] | None,
        job_id: str,
        delivery: int,
        exc: Exception,
        payload: Payload,
        progress: JobProgress,
        elapsed_s: float,
    ) -> Exception:
        """The exception to raise: arq's Retry, or JobFailed once the job has failed for good."""
        check_fence()
        failure = classify(exc)
        if failure.unexpected:
            log.error(
                "%s %s raised unexpectedly",
                spec.name,
                job_id,
                exc_info=exc,
                extra=about(job_id, spec.name, failure.error_type),
            )
        try:
            failed_tries = await self._count_failed_try(job_id)
        except INFRASTRUCTURE_ERRORS:
            failed_tries = delivery  # arq's delivery count: never fewer than the failed tries
        if self._retry.over_cap(failure.retry_after):
            failure = Failure(
                failure.error_type,
                f"{failure.detail} (asked to wait {failure.retry_after:.0f} s, over the "
                f"{self._retry.max_retry_after_s:.0f} s cap)",
                permanent=True,
            )
        if failure.permanent or failed_tries >= spec.max_tries:
            return await self._final(
                spec.name, ctx, job_id, failed_tries, failure, "failed", progress, payload=payload
            )
        delay = self._retry.delay(failed_tries, failure.retry_after)
        log.warning(
            "%s %s try %d/%d failed (%s), retrying in %.1fs",
            spec.name,
            job_id,
            failed_tries,
            spec.max_tries,
            failure.message,
            delay,
            extra=about(job_id, spec.name, failure.error_type),
        )
        await progress.update("retrying", error=failure.message, retry_in_s=round(delay, 3))
        self._ended(
            ctx,
            JobOutcome(
                job_id=job_id,
                function=spec.name,
                kind="retried",
                job_try=failed_tries,
                duration_s=elapsed_s,
                error_type=failure.error_type,
                error=failure.message,
                retry_in_s=delay,
            ),
        )
        return self._hand_back(job_id, delay)

    async def _count_failed_try(self, job_id: str) -> int:
        key = self._keys.tries(job_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, TRIES_TTL_S)
            count, _ = await pipe.execute()
        return int(count)

    async def _final(
        self,
        function: str,
        ctx: dict[str, Any] | None,
        job_id: str,
        tries: int,
        failure: Failure,
        kind: DeadLetterKind,
        progress: JobProgress,
        *,
        payload: BaseModel | None = None,
        raw: Any = None,
    ) -> Exception:
        """Record a final failure everywhere it must show, and return the error to raise.

        If the record cannot be written (Redis away), the job is kept for a later try instead:
        a failure is never final before its dead letter exists."""
        check_fence()
        log.error(
            "%s %s failed for good (%s): %s",
            function,
            job_id,
            kind,
            failure.message,
            extra=about(job_id, function, failure.error_type),
        )
        spec = self._specs.get(function)
        try:
            entry = await self._bounded(
                self.dead_letters.add(
                    job_id=job_id,
                    function=function,
                    kind=kind,
                    error_type=failure.error_type,
                    error=failure.message,
                    tries=tries,
                    payload=payload.model_dump(mode="json") if payload is not None else raw,
                    not_replayable=failure.not_replayable,
                )
            )
            if spec is not None and spec.on_failure is not None and payload is not None:
                await self._bounded(spec.on_failure(self.deps, payload, failure.message))
        except (*INFRASTRUCTURE_ERRORS, TimeoutError) as exc:
            delay = self._retry.delay(1, None)
            log.warning(
                "%s %s: failure not recorded (%s), kept",
                function,
                job_id,
                exc,
                extra=about(job_id, function, failure.error_type),
            )
            return self._hand_back(job_id, delay)
        await progress.update("failed", error=failure.message)
        self._ended(
            ctx,
            JobOutcome(
                job_id=job_id,
                function=function,
                kind=kind,
                job_try=tries,
                error_type=failure.error_type,
                error=failure.message,
                dead_letter_id=entry,
            ),
        )
        return JobFailed(failure.error_type, failure.detail)

    async def _bounded(self, step: Awaitable[Any]) -> Any:
        async with asyncio.timeout(BOOKKEEPING_S):
            return await step

    # --- outcomes that arq decides ------------------------------------------------------------

    async def record_arq_failure(
        self,
        *,
        job_id: str,
        raw_job: bytes | None,
        reason: str,
        deliveries: int,
        result: bytes | None,
        result_ttl_ms: int,
    ) -> JobOutcome:
        """A job arq failed before running it: expired, undecodable, unknown function, or its
        deliveries spent. Dead-letters it and finishes it in arq's place, in one step."""
        kind: OutcomeKind
        spec: JobSpec[Any, Any] | None = None
        payload: BaseModel | None = None
        stored: Any = None
        raw: bytes | None = None
        function = UNKNOWN_FUNCTION
        if raw_job is None:
            kind = "expired"
        else:
            try:
                job = decode_job(raw_job)
            except MalformedJob:
                kind, raw = "poison", raw_job
            else:
                spec = self._specs.get(job_type(job.function))
                stored = {"args": job.args, "kwargs": job.kwargs}
                kind = "poison"
                if spec is not None:
                    function = spec.name
                    try:
                        payload = parse_payload(spec.payload, tuple(job.args), job.kwargs)
                        stored = payload.model_dump(mode="json")
                        kind = "failed"  # its deliveries were spent by crashes or cancellations
                    except InvalidPayload as exc:
                        reason = f"{reason}; {exc}"
        entry = await self.dead_letters.add(
            job_id=job_id,
            function=function,
            kind=kind,
            error_type="JobExecutionFailed",
            error=reason,
            tries=deliveries,
            payload=stored,
            raw=raw,
            finish_result=result or b"",
            result_ttl_ms=result_ttl_ms,
        )
        log.error(
            "%s %s ended by arq (%s): %s",
            function,
            job_id,
            kind,
            reason,
            extra=about(job_id, function, "JobExecutionFailed"),
        )
        if spec is not None and spec.on_failure is not None and payload is not None:
            await self._bounded(spec.on_failure(self.deps, payload, reason))
        if kind == "expired":
            for candidate in self._specs.values():
                if candidate.on_lost is not None:
                    await self._bounded(candidate.on_lost(self.deps, job_id, reason))
        outcome = JobOutcome(
            job_id=job_id,
            function=function,
            kind=kind,
            job_try=deliveries,
            error_type="JobExecutionFailed",
            error=reason,
            dead_letter_id=entry,
        )
        self._ended(None, outcome)
        return outcome

    async def arq_job_ended(self, ctx: dict[str, Any]) -> None:
        """arq's on_job_end hook: a job the runtime started but did not decide.

        Either a shutdown cancelled it (it runs again; no try spent) or arq's backstop timeout
        fired (arq fails it for good, so it is dead-lettered here)."""
        if CTX_OUTCOME in ctx or CTX_SPEC not in ctx:
            return
        spec: JobSpec[Any, Any] = ctx[CTX_SPEC]
        job_id, delivery = ctx["job_id"], ctx["job_try"]
        if ctx.get(CTX_CANCELLED) == "shutdown":
            outcome = JobOutcome(
                job_id=job_id, function=spec.name, kind="cancelled", job_try=delivery
            )
            self._ended(ctx, outcome)
            return
        failure = Failure("TimeoutError", "arq's backstop timeout", permanent=True)
        progress = JobProgress(self._redis, self._keys, job_id, delivery)
        try:
            await self._final(spec.name, ctx, job_id, delivery, failure, "failed", progress)
        except Exception:
            log.exception(
                "%s %s: recording arq's timeout failed",
                spec.name,
                job_id,
                extra=about(job_id, spec.name, "TimeoutError"),
            )


def parse_payload(
    model: type[Payload], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> Payload:
    """A job takes one payload: a dict as its only argument, or keyword arguments, or nothing."""
    if len(args) > 1 or (args and not isinstance(args[0], dict)):
        raise InvalidPayload(f"expected one JSON object argument, got {len(args)} argument(s)")
    data = {**(args[0] if args else {}), **kwargs}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise InvalidPayload(
            f"{exc.error_count()} invalid field(s), first {where}: {first['msg']}"
        ) from None
