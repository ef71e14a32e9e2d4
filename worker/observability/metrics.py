"""The worker's Prometheus metrics, defined once, in one registry per worker process.

Naming: one prefix, base units (seconds), counters end in `_total`. Every label has a bounded set
of values, all known at start and initialised to zero so a rate() never starts from a missing
series: job types are the registered names plus UNKNOWN_FUNCTION, never a job id, prospect,
domain or error text.

Two kinds of figures live here:
- per process (job outcomes, durations, in flight, external requests): summed across replicas;
- queue-wide facts (queue depth, dead letters, the daily run) that every replica samples from
  Redis in the background and reports alike: dashboards and alerts take `max` across replicas.
"""

import platform
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from arq.version import VERSION as ARQ_VERSION
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.gc_collector import GCCollector

from worker.runtime.outcomes import OUTCOME_KINDS, UNKNOWN_FUNCTION
from worker.scheduling.queueorder import PRIORITIES

PREFIX = "prospect_worker"
QUEUE_STATES = ("due", "scheduled")
# The limiters the scheduling work will add; their metrics stay at zero until then.
LIMITERS = ("discovery", "email_finder", "llm", "website")
EXTERNAL_OUTCOMES = (
    "success",
    "client_error",
    "rate_limited",
    "server_error",
    "timeout",
    "network_error",
    "error",
)
DAILY_STAGES = ("discovered", "fanned_out", "drafted", "queued", "failed")
REDIS_ERROR_COMPONENTS = ("sampler", "readiness")
REFUSED_RECORDS = ("tally", "approval", "fanout")  # jobs.deps.RefusedRecord

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3_600, 14_400, 86_400)
HTTP_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def package_version() -> str:
    try:
        return version("prospect-worker")
    except PackageNotFoundError:
        return "unknown"


class Metrics:
    """Every metric of one worker process. Built at startup and passed to whoever updates it."""

    def __init__(
        self,
        job_types: Sequence[str],
        external_operations: Sequence[tuple[str, str]],
        *,
        job_limits: dict[str, int],
        max_jobs: int,
    ) -> None:
        self.job_types = (*job_types, UNKNOWN_FUNCTION)
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

        def name(suffix: str) -> str:
            return f"{PREFIX}_{suffix}"

        # --- jobs, per process, counted at the runtime's outcome hook ---
        self.jobs_started = Counter(
            name("jobs_started"), "Job tries started", ["job_type"], registry=registry
        )
        self.job_outcomes = Counter(
            name("job_outcomes"),
            "Job tries ended, by outcome (failed, poison and expired are dead-lettered)",
            ["job_type", "outcome"],
            registry=registry,
        )
        self.job_duration = Histogram(
            name("job_duration_seconds"),
            "Run time of a job body that ran",
            ["job_type"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.job_queue_wait = Histogram(
            name("job_queue_wait_seconds"),
            "Time from enqueue (or the end of a retry's delay) to start",
            ["job_type"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.jobs_in_flight = Gauge(
            name("jobs_in_flight"), "Jobs running in this process", ["job_type"], registry=registry
        )
        self.job_limit = Gauge(
            name("job_limit"),
            "Jobs of a type allowed at once in this process",
            ["job_type"],
            registry=registry,
        )
        self.max_jobs = Gauge(
            name("max_jobs"), "Jobs allowed at once in this process (all types)", registry=registry
        )

        # --- the queue, the same for every replica (sampled in the background) ---
        self.queue_jobs = Gauge(
            name("queue_jobs"),
            "Jobs waiting in the queue by priority class: due (runnable now) or scheduled "
            "(deferred, retry delay)",
            ["job_type", "priority", "state"],
            registry=registry,
        )
        self.queue_parked = Gauge(
            name("queue_parked_jobs"),
            "Jobs of a type parked while the type is at its concurrency limit, each waiting "
            "for a lease to free (also counted as scheduled in queue_jobs)",
            ["job_type"],
            registry=registry,
        )
        self.queue_oldest_due_age = Gauge(
            name("queue_oldest_due_age_seconds"),
            "How long the oldest due job has been runnable",
            registry=registry,
        )
        self.queue_paused = Gauge(
            name("queue_paused"),
            "1 while the whole queue is paused (python -m worker pause), else 0",
            registry=registry,
        )
        self.dead_letters = Gauge(
            name("dead_letter_stream_entries"),
            "Entries in the dead-letter stream",
            registry=registry,
        )
        self.sample_timestamp = Gauge(
            name("queue_sample_timestamp_seconds"),
            "When the background sampler last refreshed the queue-wide figures",
            registry=registry,
        )
        self.sample_duration = Gauge(
            name("queue_sample_duration_seconds"),
            "How long the last refresh of the queue-wide figures took",
            registry=registry,
        )

        # --- rate limits (incremented by the scheduling work; zero until then) ---
        self.rate_limit_deferrals = Counter(
            name("rate_limit_deferrals"),
            "Jobs deferred because a rate limiter had no room",
            ["limiter"],
            registry=registry,
        )
        self.rate_limit_wait = Histogram(
            name("rate_limit_wait_seconds"),
            "Time waited for a rate limiter",
            ["limiter"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )

        # --- external APIs, per process ---
        self.external_requests = Counter(
            name("external_requests"),
            "HTTP requests to external services, by outcome class",
            ["service", "operation", "outcome"],
            registry=registry,
        )
        self.external_duration = Histogram(
            name("external_request_duration_seconds"),
            "HTTP request time to external services, errors included",
            ["service", "operation"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )

        # --- the daily run, the same for every replica (sampled) ---
        self.daily_last_start = Gauge(
            name("daily_run_last_start_timestamp_seconds"),
            "When the latest daily run started (0: none in the last days)",
            registry=registry,
        )
        self.daily_last_success = Gauge(
            name("daily_run_last_success_timestamp_seconds"),
            "When the latest daily run completed with every prospect ended (0: none)",
            registry=registry,
        )
        self.daily_prospects = Gauge(
            name("daily_run_prospects"),
            "The latest daily run's counts",
            ["stage"],
            registry=registry,
        )
        self.quota_used = Gauge(
            name("daily_quota_used_drafts"), "Drafts queued today", registry=registry
        )
        self.quota_limit = Gauge(
            name("daily_quota_limit_drafts"), "Drafts allowed per day", registry=registry
        )

        self.run_records_refused = Counter(
            name("run_records_refused"),
            "Writes refused for belonging to no open run (a job of a run Redis lost), by record",
            ["record"],
            registry=registry,
        )

        # --- the process itself ---
        self.redis_errors = Counter(
            name("redis_errors"),
            "Redis calls that failed in the sampler or the readiness probe",
            ["component"],
            registry=registry,
        )
        self.heartbeat = Gauge(
            name("loop_heartbeat_timestamp_seconds"),
            "Last tick of this process's event loop",
            registry=registry,
        )
        self.loop_lag = Gauge(
            name("loop_lag_seconds"),
            "How late the event loop's last tick woke up",
            registry=registry,
        )
        self.build = Info(name("build"), "Version of the worker", registry=registry)

        self._initialise(external_operations, job_limits, max_jobs)

    def _initialise(
        self,
        external_operations: Sequence[tuple[str, str]],
        job_limits: dict[str, int],
        max_jobs: int,
    ) -> None:
        """Create every known label set at zero, and the constant figures."""
        for job_type in self.job_types:
            self.jobs_started.labels(job_type)
            self.job_duration.labels(job_type)
            self.job_queue_wait.labels(job_type)
            self.jobs_in_flight.labels(job_type)
            for outcome in OUTCOME_KINDS:
                self.job_outcomes.labels(job_type, outcome)
            for priority in PRIORITIES:  # the classes of worker/scheduling/queueorder.py
                for state in QUEUE_STATES:
                    self.queue_jobs.labels(job_type, priority, state)
        for job_type, limit in job_limits.items():
            self.job_limit.labels(job_type).set(limit)
            self.queue_parked.labels(job_type)
        self.max_jobs.set(max_jobs)
        for limiter in LIMITERS:
            self.rate_limit_deferrals.labels(limiter)
            self.rate_limit_wait.labels(limiter)
        for service, operation in external_operations:
            self.external_duration.labels(service, operation)
            for outcome_class in EXTERNAL_OUTCOMES:
                self.external_requests.labels(service, operation, outcome_class)
        for stage in DAILY_STAGES:
            self.daily_prospects.labels(stage)
        for component in REDIS_ERROR_COMPONENTS:
            self.redis_errors.labels(component)
        for record in REFUSED_RECORDS:
            self.run_records_refused.labels(record)
        self.build.info(
            {
                "version": package_version(),
                "python": platform.python_version(),
                "arq": ARQ_VERSION,
            }
        )

    def record_refused(self, record: str) -> None:
        self.run_records_refused.labels(record).inc()

    def job_type(self, function: str) -> str:
        """A job type label: a known one, else UNKNOWN_FUNCTION (labels stay bounded)."""
        return function if function in self.job_types else UNKNOWN_FUNCTION

    def rate_limited(self, limiter: str, *, waited_s: float | None, deferred: bool) -> None:
        """For the rate limiters: one wait, and whether the job was deferred instead."""
        if waited_s is not None:
            self.rate_limit_wait.labels(limiter).observe(waited_s)
        if deferred:
            self.rate_limit_deferrals.labels(limiter).inc()
