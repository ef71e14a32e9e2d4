"""What a failed try means: errors classified at the boundary, and the retry delay.

Job bodies raise the errors of `jobs.errors`; anything else is either the infrastructure being
briefly away (a timeout, a dropped connection: transient) or a bug (unexpected: retried, and the
only case that deserves a traceback in the log).
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from jobs.errors import PermanentError, TransientError, most_severe
from worker.connections import INFRASTRUCTURE_ERRORS


@dataclass(frozen=True)
class Failure:
    error_type: str
    detail: str  # the error's own text, on one line
    permanent: bool
    retry_after: float | None = None
    unexpected: bool = False
    not_replayable: str | None = None  # a permanent error's own word that a replay cannot help

    @property
    def message(self) -> str:
        return f"{self.error_type}: {self.detail}" if self.detail else self.error_type


def classify(exc: BaseException) -> Failure:
    """An exception group is judged by its most severe member (jobs.errors.most_severe)."""
    decisive = most_severe(exc)
    name, detail = type(decisive).__name__, " ".join(str(decisive).split())
    if isinstance(decisive, PermanentError):
        return Failure(name, detail, permanent=True, not_replayable=decisive.not_replayable)
    if isinstance(decisive, TransientError):
        return Failure(name, detail, permanent=False, retry_after=decisive.retry_after)
    if isinstance(decisive, INFRASTRUCTURE_ERRORS):
        return Failure(name, detail, permanent=False)
    return Failure(name, detail, permanent=False, unexpected=True)


@dataclass(frozen=True)
class RetryPolicy:
    base_delay_s: float
    max_delay_s: float
    # A longer Retry-After is not waited out: the job is dead-lettered instead (replayable).
    max_retry_after_s: float = 3_600.0
    rand: Callable[[], float] = field(default=random.random)

    def delay(self, failed_tries: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter in [half, full], never sooner than Retry-After."""
        # int ** int is typed Any (a negative exponent gives a float): say what it is here.
        ceiling: float = min(self.max_delay_s, self.base_delay_s * 2 ** (failed_tries - 1))
        jittered = ceiling * (0.5 + self.rand() / 2)
        return max(jittered, retry_after or 0.0)

    def over_cap(self, retry_after: float | None) -> bool:
        return retry_after is not None and retry_after > self.max_retry_after_s
