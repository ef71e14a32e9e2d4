"""The error vocabulary every job and client speaks (and `jobs.fencing.JobLost`).

Errors are classified where they arise (a client knows a 429 from a 404); only the engine's
runtime turns them into a retry or a failure.
"""

from jobs.fencing import JobLost


class JobError(Exception):
    """Base of every error the pipeline raises on purpose."""


class TransientError(JobError):
    """Worth retrying: timeouts, connection errors, 429 and 5xx answers."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        # Seconds the far side asked us to wait (Retry-After); None when it did not say.
        self.retry_after = retry_after


class RateLimited(TransientError):
    """The far side (or our own limiter) said slow down."""


class PermanentError(JobError):
    """Retrying cannot help: a 4xx other than 429, a refused URL, a malformed answer."""

    # Why replaying the job from the dead letters cannot help either, and what to do instead;
    # None when a replay may work once the cause is fixed (a missing setting, say).
    not_replayable: str | None = None


class MalformedResponse(PermanentError):
    """A 2xx answer we cannot read. Permanent for a single call; a pager that knows the
    provider sometimes truncates a page may ask again a few times."""


class InvalidPayload(PermanentError):
    """A job's arguments did not validate: a poison message, never retried."""

    not_replayable = "its payload is refused the same way again: enqueue a corrected job instead"


class Deferred(Exception):
    """Not a failure: the job met a shared limit (a provider's rate, its type's concurrency,
    a pause) and asks to run again once it frees. The runtime puts it back in the queue after
    `delay_s` without spending a try and without holding a slot meanwhile.

    Deliberately not a JobError: code that catches the pipeline's errors to record them (a
    website that failed, say) must let a deferral through."""

    def __init__(self, delay_s: float, *, reason: str, limit: str) -> None:
        super().__init__(f"deferred {delay_s:.3f} s by {reason} ({limit})")
        self.delay_s = max(0.0, delay_s)
        # Low-cardinality names, for logs and metrics: what kind of limit, and which one.
        self.reason = reason  # "rate_limit" | "type_limit" | "paused" | "daily_cap"
        self.limit = limit  # the service or job type


def most_severe(exc: BaseException) -> BaseException:
    """The one member of an exception group that decides what happens to the job.

    `asyncio.TaskGroup` wraps its tasks' errors in an ExceptionGroup, which is neither permanent
    nor transient; classifying the group by its most severe member keeps a permanent error from
    being retried and a Retry-After from being ignored. The ranking, most severe first:
    a BaseException that is not an Exception (cancellation, interrupt: it must propagate),
    JobLost (the worker no longer owns the job: nothing may be recorded), a PermanentError,
    any other unexpected error (a bug: retried, then dead-lettered), a Deferred (the longest
    delay when several: the job runs again without spending a try), then a TransientError, the
    one with the longest Retry-After when several. A plain exception is its own most severe
    member.
    """
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    return max(_leaves(exc), key=_severity)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for member in group.exceptions:
        found += _leaves(member) if isinstance(member, BaseExceptionGroup) else [member]
    return found


def _severity(exc: BaseException) -> tuple[int, float]:
    if not isinstance(exc, Exception):
        return (5, 0.0)
    if isinstance(exc, JobLost):
        return (4, 0.0)
    if isinstance(exc, PermanentError):
        return (3, 0.0)
    if isinstance(exc, Deferred):
        return (1, exc.delay_s)
    if isinstance(exc, TransientError):
        return (0, exc.retry_after or 0.0)
    return (2, 0.0)
