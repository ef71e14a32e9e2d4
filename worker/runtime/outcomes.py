"""Job outcomes: what the runtime reports when a job starts and when it ends, whoever decided it.

Every job ends in exactly one `JobOutcome`, decided by the runtime (a body that returned or
raised) or by arq before or around it (expired, undeserializable, unknown function, tries spent).
Observers (logs, metrics) subscribe here; they are called synchronously and must not block.
"""

from typing import Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict

# succeeded:  the body returned.
# retried:    a try failed and the job is deferred for another (no outcome is final yet).
# failed:     the tries are spent or the error is permanent; dead-lettered.
# poison:     the job cannot run at all (bad bytes, unknown function, invalid payload);
#             dead-lettered.
# expired:    the job's key expired before a worker started it; dead-lettered.
# cancelled:  a shutdown cut the try short; the job runs again and no try was spent.
# deferred:   the job met a shared limit (`deferred_by`: type_limit, rate_limit; `limit_name`:
#             the job type or service) and runs again after `retry_in_s`; no try was spent.
# lost:       the worker no longer owned the job (its marker lapsed or another worker took it,
#             worker/runtime/fencing.py): stopped at its next step, nothing recorded, no try spent.
OutcomeKind = Literal[
    "succeeded", "retried", "failed", "poison", "expired", "cancelled", "deferred", "lost"
]
OUTCOME_KINDS: tuple[OutcomeKind, ...] = get_args(OutcomeKind)
# The job type label for a job whose function name is not one this worker knows: metrics
# labels stay bounded whatever a client enqueues.
UNKNOWN_FUNCTION = "unknown"


class JobOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_id: str
    function: str  # a known job name, or UNKNOWN_FUNCTION
    kind: OutcomeKind
    job_try: int  # the runtime's own count of tries (a cancellation does not spend one)
    duration_s: float | None = None  # the body's run time; None when it never ran
    error_type: str | None = None  # the classified error's class name
    error: str | None = None  # one line, never a traceback
    retry_in_s: float | None = None  # for "retried" and "deferred"
    deferred_by: str | None = None  # for "deferred": the kind of limit met
    limit_name: str | None = None  # for "deferred": which one (a job type or a service)
    dead_letter_id: str | None = None  # the dead-letter stream entry, when one was written


class JobObserver(Protocol):
    def started(
        self, *, job_id: str, function: str, job_try: int, queue_wait_s: float | None
    ) -> None: ...

    def ended(self, outcome: JobOutcome) -> None: ...
