"""The worker's own Redis keys, beside the domain's (jobs/keys.py) under the same prefix: what the
runtime, the scheduling and the observability keep (progress, failed tries, type leases, rate
windows, priorities, the pause switch, wake-ups, dead letters, replica stats). arq's own keys are
in worker/engine/arqjobs.py.
"""

from dataclasses import dataclass

from jobs.keys import Keys


@dataclass(frozen=True)
class WorkerKeys(Keys):
    """The domain's keys and the worker's, so one object serves a component that reads both."""

    def progress(self, job_id: str) -> str:
        return f"{self.prefix}:progress:{job_id}"

    def tries(self, job_id: str) -> str:
        """Counter: the job's failed tries (a cancellation or a crash does not count)."""
        return f"{self.prefix}:tries:{job_id}"

    def type_leases(self, function: str) -> str:
        """Sorted set: job ids of this type running anywhere, scored by when their lease lapses
        (renewed while they run). Expires when no job of the type has run for a lease period."""
        return f"{self.prefix}:leases:{function}"

    def parked(self, function: str) -> str:
        """Sorted set: jobs of this type parked while it is at its limit, scored by their place
        in the queue when claimed; a freed lease hands the lowest its slot. Expires a day
        after its newest entry."""
        return f"{self.prefix}:parked:{function}"

    def priority(self, job_id: str) -> str:
        """String: how far ahead of its due time the job is scored (its priority class, less
        its rank), so a retry keeps its class. Expires with the job key (24 h)."""
        return f"{self.prefix}:priority:{job_id}"

    @property
    def deferred(self) -> str:
        """Sorted set: deferred jobs with a priority, by due time, until a worker puts them
        back in their class. An entry leaves when promoted; the set expires a day after its
        newest entry's due time."""
        return f"{self.prefix}:deferred"

    @property
    def wake(self) -> str:
        """Pub/sub channel: "jobs were just enqueued", so idle workers start them at once rather
        than at their next poll. Nothing is stored."""
        return f"{self.prefix}:wake"

    @property
    def paused(self) -> str:
        """Hash: what is paused (`*` the whole queue, or job type names). No TTL on purpose: an
        operator's switch, deleted by `resume`."""
        return f"{self.prefix}:paused"

    def rate_window(self, service: str, window: str) -> str:
        """Sorted set: requests sent to `service` in the last window ("s" or "min"), scored by
        Redis's own clock. Expires one window after the last request."""
        return f"{self.prefix}:rate:{service}:{window}"

    def rate_booked(self, service: str, window: str) -> str:
        """Sorted set: slots booked in that window for the requests it refused, scored by the
        Redis time each waiter is to come back; a slot is taken by the next request let
        through once due, and lapses shortly after. Expires just after the last booking."""
        return f"{self.prefix}:rate:{service}:{window}:booked"

    def dead_letter_marker(self, job_id: str) -> str:
        """String: the dead-letter entry of this job id, so it is written once."""
        return f"{self.prefix}:deadletter:{job_id}"

    def dead_letter_replayed(self, entry_id: str) -> str:
        """Hash: a dead-letter entry that was replayed (job id, when, by whom), written in the
        step that removes the entry, so a second replay says so. TTL 30 days."""
        return f"{self.prefix}:replayed:{entry_id}"

    @property
    def audit(self) -> str:
        """Stream: every action a person took through the CLI or the console (who, through
        which door, from where, what, the outcome). Capped near its newest 100,000 entries;
        no TTL: it is the record of who did what."""
        return f"{self.prefix}:stream:audit"

    @property
    def dead_letters(self) -> str:
        """Stream: jobs that failed for good, with payload (up to 56 KiB, else its start, length
        and sha256) and error, for replay. Capped near the dead_letter_max_entries setting."""
        return f"{self.prefix}:stream:deadletter"

    @property
    def workers(self) -> str:
        """Sorted set with a TTL: replica name -> unix time it last published."""
        return f"{self.prefix}:workers"

    def worker(self, replica: str) -> str:
        """String with a TTL: the replica's latest snapshot (JSON)."""
        return f"{self.prefix}:worker:{replica}"

    def outcomes(self, bucket: int) -> str:
        """Hash with a TTL (49 h): "<job type>:<outcome>" -> count, "<job type>:run_s" ->
        seconds its bodies ran and "<job type>:runs" -> their count, for one minute (unix time
        // 60), every replica's (worker/observability/minute_counts.py)."""
        return f"{self.prefix}:outcomes:{bucket}"

    def hourly_outcomes(self, hour: int) -> str:
        """Hash with a TTL (49 h): the same figures as `outcomes`, for one hour (unix time //
        3600), so two days of charts read 48 hashes rather than 2,880."""
        return f"{self.prefix}:outcomes:hour:{hour}"
