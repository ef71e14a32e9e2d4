"""The runtime: the one place that wraps every job.

It validates the payload, holds the job type's concurrency limit, enforces the timeout, turns
errors into a retry (exponential backoff with jitter, at least the far side's Retry-After) or a
final failure (dead-letter entry, the job's own failure hook), and keeps the progress record.
Job bodies only raise the errors of `jobs.errors`; they never see arq.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from arq import Retry
from arq.worker import Function, func
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs.deps import Deps, Progress
from jobs.errors import InvalidPayload, PermanentError, TransientError
from jobs.keys import Keys
from worker.deadletter import add_dead_letter
from worker.outcomes import JobObserver, JobOutcome
from worker.progress import JobProgress
from worker.serializer import JobFailed

log = logging.getLogger("prospect_worker.runtime")

Payload = TypeVar("Payload", bound=BaseModel)
Result = TypeVar("Result", bound=BaseModel)

# arq's own timeout is a backstop only: ours (slot wait, then the run) fire first and are
# classified as transient.
ARQ_TIMEOUT_GRACE_S = 5.0


@dataclass(frozen=True)
class JobSpec(Generic[Payload, Result]):
    name: str
    body: Callable[[Deps, Payload, Progress], Awaitable[Result]]
    payload: type[Payload]
    timeout_s: float
    max_tries: int
    limit: int
    on_failure: Callable[[Deps, Payload, str], Awaitable[None]] | None = None


@dataclass(frozen=True)
class RetryPolicy:
    base_delay_s: float
    max_delay_s: float
    rand: Callable[[], float] = field(default=random.random)

    def delay(self, job_try: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter in [half, full], never sooner than Retry-After."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (job_try - 1))
        jittered = ceiling * (0.5 + self.rand() / 2)
        return max(jittered, retry_after or 0.0)


class Runtime:
    """Built once per worker process at startup; arq's ctx carries it to every job."""

    def __init__(
        self,
        deps: Deps,
        redis: Redis,
        keys: Keys,
        retry: RetryPolicy,
        observers: Sequence[JobObserver] = (),
    ) -> None:
        self.deps = deps
        self._redis = redis
        self._keys = keys
        self._retry = retry
        self._observers = tuple(observers)
        self._limits: dict[str, asyncio.Semaphore] = {}

    def _ended(self, outcome: JobOutcome) -> None:
        for observer in self._observers:
            observer.ended(outcome)

    def _limit(self, spec: JobSpec[Any, Any]) -> asyncio.Semaphore:
        if spec.name not in self._limits:
            self._limits[spec.name] = asyncio.Semaphore(spec.limit)
        return self._limits[spec.name]

    async def execute(
        self,
        spec: JobSpec[Payload, Result],
        *,
        job_id: str,
        job_try: int,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> dict[str, Any]:
        progress = JobProgress(self._redis, self._keys, job_id, job_try)
        try:
            payload = parse_payload(spec.payload, args, kwargs)
        except InvalidPayload as exc:
            # A poison message: no retry can fix it, and the failure hook cannot read it.
            raw = {"args": list(args), "kwargs": dict(kwargs)}
            raise await self._fail(spec, job_id, job_try, exc, progress, raw=raw) from None

        await progress.update("waiting_for_slot")
        try:
            # Waiting for the job type's slot is bounded too: a job that cannot get one in time
            # is retried later rather than left for arq's backstop timeout, which never retries.
            async with asyncio.timeout(spec.timeout_s):
                await self._limit(spec).acquire()
            try:
                await progress.update("started")
                async with asyncio.timeout(spec.timeout_s):
                    result = await spec.body(self.deps, payload, progress)
            finally:
                self._limit(spec).release()
        except PermanentError as exc:
            raise await self._fail(spec, job_id, job_try, exc, progress, payload=payload) from exc
        except (
            TransientError,
            TimeoutError,
            OSError,
            RedisConnectionError,
            RedisTimeoutError,
        ) as exc:
            raise await self._retry_or_fail(spec, payload, job_id, job_try, exc, progress) from exc
        except Exception as exc:  # an unexpected bug: retried, then dead-lettered
            log.exception("%s %s raised unexpectedly", spec.name, job_id)
            raise await self._retry_or_fail(spec, payload, job_id, job_try, exc, progress) from exc
        await progress.update("complete")
        return result.model_dump(mode="json")

    async def _retry_or_fail(
        self,
        spec: JobSpec[Payload, Any],
        payload: Payload,
        job_id: str,
        job_try: int,
        exc: Exception,
        progress: JobProgress,
    ) -> Exception:
        """The exception to raise: arq's Retry, or JobFailed once the tries are spent."""
        if job_try >= spec.max_tries:
            return await self._fail(spec, job_id, job_try, exc, progress, payload=payload)
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        delay = self._retry.delay(job_try, retry_after)
        log.warning(
            "%s %s try %d/%d failed (%s), retrying in %.1fs",
            spec.name,
            job_id,
            job_try,
            spec.max_tries,
            describe(exc),
            delay,
        )
        await progress.update("retrying", error=describe(exc), retry_in_s=round(delay, 3))
        return Retry(defer=delay)

    async def _fail(
        self,
        spec: JobSpec[Payload, Any],
        job_id: str,
        job_try: int,
        exc: Exception,
        progress: JobProgress,
        *,
        payload: Payload | None = None,
        raw: Any = None,
    ) -> JobFailed:
        """Record a final failure everywhere it must show, and return the error to raise.

        `payload` when it validated (the failure hook gets it), else the `raw` arguments."""
        reason = describe(exc)
        log.error("%s %s failed for good after %d tries: %s", spec.name, job_id, job_try, reason)
        entry = payload.model_dump(mode="json") if payload is not None else raw
        await add_dead_letter(
            self._redis,
            self._keys,
            job_id=job_id,
            function=spec.name,
            payload=entry,
            error=reason,
            tries=job_try,
        )
        if spec.on_failure is not None and payload is not None:
            await spec.on_failure(self.deps, payload, reason)
        await progress.update("failed", error=reason)
        return JobFailed(type(exc).__name__, str(exc))


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


def arq_function(spec: JobSpec[Any, Any]) -> Function:
    """Adapt a job spec to arq's `(ctx, *args, **kwargs)` form."""

    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        runtime: Runtime = ctx["runtime"]
        return await runtime.execute(
            spec, job_id=ctx["job_id"], job_try=ctx["job_try"], args=args, kwargs=kwargs
        )

    run.__qualname__ = spec.name
    # One more try than ours, so arq never fails a job before the runtime has decided.
    return func(
        run,
        name=spec.name,
        timeout=2 * spec.timeout_s + ARQ_TIMEOUT_GRACE_S,
        max_tries=spec.max_tries + 1,
    )
