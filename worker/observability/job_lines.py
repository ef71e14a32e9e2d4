"""The log side of the runtime's outcome hook: one INFO line per job outcome.

A try's start is a DEBUG line. A deferral (a type's limit, a provider's rate, a pause) is no
outcome: the job runs again soon, with no try spent. Each is a DEBUG line, and every
`summary_s` one INFO line counts them by reason (`deferred 407 jobs in the last 30 s:
type_limit 407`), so a busy queue does not bury its outcomes under its deferrals.

Each line carries the job's id, type, try, duration and outcome as structured fields (keys in
the JSON format) and says the same in words in the text format. No payload, result or error
text: those may hold company or contact data; the error's class name is enough to find the
runtime's own line, and the dead-letter entry holds the rest. A cron run's end is its own
event, `cron_run`, so each scheduled run is one line to look for.
"""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable

from worker.engine.arqjobs import is_cron_run
from worker.runtime.outcomes import JobOutcome

log = logging.getLogger("prospect_worker.jobs")

# Final failures are worth a look; the rest is the normal life of a queue.
WARN_ON = frozenset({"failed", "poison", "expired"})


class JobLog:
    """A `JobObserver` writing the job lines; `run` writes the deferral summaries."""

    def __init__(self, summary_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.summary_s = summary_s
        self._clock = clock
        self._deferred: Counter[str] = Counter()
        self._since = clock()

    def started(
        self, *, job_id: str, function: str, job_try: int, queue_wait_s: float | None
    ) -> None:
        waited = f", waited {queue_wait_s:.3f}s" if queue_wait_s is not None else ""
        log.debug(
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
        event = "cron_run" if is_cron_run(outcome.job_id) else "job_end"
        took = f" in {outcome.duration_s:.3f}s" if outcome.duration_s is not None else ""
        why = f" ({outcome.error_type})" if outcome.error_type else ""
        retry = f", retry in {outcome.retry_in_s:.1f}s" if outcome.retry_in_s is not None else ""
        if outcome.kind == "deferred":
            self._deferred[outcome.deferred_by or "unknown"] += 1
        log.log(
            _level(outcome),
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

    def summarise(self) -> None:
        """The INFO line counting the deferrals since the last one (none: no line)."""
        now = self._clock()
        if self._deferred:
            by_reason = ", ".join(f"{why} {n}" for why, n in sorted(self._deferred.items()))
            log.info(
                "deferred %d jobs in the last %.0f s: %s",
                self._deferred.total(),
                now - self._since,
                by_reason,
                extra={"event": "deferrals"},
            )
        self._deferred.clear()
        self._since = now

    async def run(self) -> None:
        """Summarise every `summary_s`, and once more when stopped (the last deferrals)."""
        try:
            while True:
                await asyncio.sleep(self.summary_s)
                self.summarise()
        finally:
            self.summarise()


def _level(outcome: JobOutcome) -> int:
    if outcome.kind == "deferred":
        return logging.DEBUG
    return logging.WARNING if outcome.kind in WARN_ON else logging.INFO
