"""The error vocabulary every job and client speaks.

Errors are classified where they arise (a client knows a 429 from a 404); only the engine's
runtime turns them into a retry or a failure.
"""


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


class InvalidPayload(PermanentError):
    """A job's arguments did not validate: a poison message, never retried."""


def most_severe(exc: BaseException) -> BaseException:
    """The member of an exception group that decides what happens to the job.

    A permanent error wins (retrying cannot help), then anything unexpected (a bug), then the
    transient error that asked for the longest wait, so a Retry-After is always honoured."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = [most_severe(member) for member in exc.exceptions]

    def rank(member: BaseException) -> tuple[int, float]:
        if isinstance(member, PermanentError):
            return (2, 0.0)
        if isinstance(member, TransientError):
            return (0, member.retry_after or 0.0)
        return (1, 0.0)

    return max(leaves, key=rank)
