"""The metrics side of the runtime's outcome hook: every job start and end, whoever decided it.

Counting happens here and only here, so a job that arq fails before the runtime runs it (expired,
undeserializable, unknown function, tries spent) is counted like any other once the runtime
reports it. Sync and cheap: counters in memory, nothing awaited.
"""

from collections import Counter as Tallies
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from worker.observability.metrics import Metrics
from worker.observability.minute_counts import Tally
from worker.runtime.outcomes import JobOutcome


@dataclass(frozen=True)
class _TypeSeries:
    """One job type's series, looked up once: prometheus_client's `labels()` takes a lock and
    builds a key on every call, twice or more per job otherwise."""

    started: Counter
    queue_wait: Histogram
    in_flight: Gauge
    duration: Histogram
    outcomes: dict[str, Counter]


class JobMetrics:
    """A `JobObserver` feeding the Prometheus metrics and the per-minute outcome tally that the
    sampler publishes for `python -m worker stats`."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        # job id -> job type, for the tries running now: an outcome decided by arq before the
        # runtime started the try has no start, and must not take the in-flight gauge below 0.
        self._running: dict[str, str] = {}
        self._unpublished = Tally()
        self._series: dict[str, _TypeSeries] = {}

    def _of(self, job_type: str) -> _TypeSeries:
        series = self._series.get(job_type)
        if series is None:
            m = self._metrics
            series = self._series[job_type] = _TypeSeries(
                m.jobs_started.labels(job_type),
                m.job_queue_wait.labels(job_type),
                m.jobs_in_flight.labels(job_type),
                m.job_duration.labels(job_type),
                {},
            )
        return series

    def started(
        self, *, job_id: str, function: str, job_try: int, queue_wait_s: float | None
    ) -> None:
        job_type = self._metrics.job_type(function)
        series = self._of(job_type)
        series.started.inc()
        if queue_wait_s is not None:
            series.queue_wait.observe(max(0.0, queue_wait_s))
        if job_id not in self._running:
            self._running[job_id] = job_type
            series.in_flight.inc()

    def ended(self, outcome: JobOutcome) -> None:
        job_type = self._metrics.job_type(outcome.function)
        series = self._of(job_type)
        counted = series.outcomes.get(outcome.kind)
        if counted is None:
            counted = series.outcomes[outcome.kind] = self._metrics.job_outcomes.labels(
                job_type, outcome.kind
            )
        counted.inc()
        if outcome.duration_s is not None:
            series.duration.observe(outcome.duration_s)
        if outcome.kind == "deferred" and outcome.deferred_by == "rate_limit":
            # The scheduling's rate limits (worker/scheduling/limits.py): the job was deferred, not
            # made to wait in its slot, so there is no wait to observe.
            self._metrics.rate_limited(
                outcome.limit_name or "unknown", waited_s=None, deferred=True
            )
        running = self._running.pop(outcome.job_id, None)
        if running is not None:
            self._of(running).in_flight.dec()
        self._unpublished.add(job_type, outcome.kind, outcome.duration_s)

    def in_flight(self) -> dict[str, int]:
        """Tries running now in this process, by job type."""
        return dict(Tallies(self._running.values()))

    def take_unpublished(self) -> Tally:
        """The outcomes counted since the last call (the sampler publishes them to Redis)."""
        taken, self._unpublished = self._unpublished, Tally()
        return taken

    def put_back(self, unpublished: Tally) -> None:
        """Outcomes a failed publish could not write: they go out with the next one."""
        self._unpublished.merge(unpublished)
