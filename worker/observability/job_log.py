"""The log side of the runtime's outcome hook: one line when a job try starts, one when it ends.

Each line carries the job's id, type, try, duration and outcome as structured fields (keys in
the JSON format) and says the same in words in the text format. No payload, result or error
text: those may hold company or contact data; the error's class name is enough to find the
runtime's own line, and the dead-letter entry holds the rest. A cron run's end is its own
event, `cron_run`, so each scheduled run is one line to look for.
"""

import logging

from worker.runtime.outcomes import JobOutcome

log = logging.getLogger("prospect_worker.jobs")

CRON_PREFIX = "cron:"  # arq's job id for a cron run: cron:<name>:<tick>
# Final failures are worth a look; the rest is the normal life of a queue.
WARN_ON = frozenset({"failed", "poison", "expired"})


class JobLog:
    """A `JobObserver` writing the job lines."""

    def started(
        self, *, job_id: str, function: str, job_try: int, queue_wait_s: float | None
    ) -> None:
        waited = f", waited {queue_wait_s:.3f}s" if queue_wait_s is not None else ""
        log.info(
            "job start %s %s try %d%s",
            function,
            job_id,
            job_try,
            waited,
            extra={
                "event": "job_start",
                "job_id": job_id,
                "job_type": function,
                "job_try": job_try,
                "queue_wait_s": queue_wait_s,
            },
        )

    def ended(self, outcome: JobOutcome) -> None:
        event = "cron_run" if outcome.job_id.startswith(CRON_PREFIX) else "job_end"
        took = f" in {outcome.duration_s:.3f}s" if outcome.duration_s is not None else ""
        why = f" ({outcome.error_type})" if outcome.error_type else ""
        retry = f", retry in {outcome.retry_in_s:.1f}s" if outcome.retry_in_s is not None else ""
        log.log(
            logging.WARNING if outcome.kind in WARN_ON else logging.INFO,
            "job end %s %s try %d %s%s%s%s",
            outcome.function,
            outcome.job_id,
            outcome.job_try,
            outcome.kind,
            took,
            why,
            retry,
            extra={
                "event": event,
                "job_id": outcome.job_id,
                "job_type": outcome.function,
                "job_try": outcome.job_try,
                "outcome": outcome.kind,
                "duration_s": outcome.duration_s,
                "retry_in_s": outcome.retry_in_s,
                "error_type": outcome.error_type,
                "dead_letter_id": outcome.dead_letter_id,
            },
        )
