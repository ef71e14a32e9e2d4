"""Every Redis key and stream the pipeline writes, named in one place."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "pw"

    def run(self, run_id: str) -> str:
        """Hash: the daily run's fan-out and the tally of its per-prospect jobs."""
        return f"{self.prefix}:run:{run_id}"

    def quota(self, day: str) -> str:
        """Counter: drafts queued for approval on that local day."""
        return f"{self.prefix}:quota:{day}"

    def prospect(self, run_id: str, company_id: str) -> str:
        """Hash: a prospect's checkpoints in one run (enrichment, score, draft): retries resume."""
        return f"{self.prefix}:prospect:{run_id}:{company_id}"

    def draft(self, company_id: str) -> str:
        """Hash: one outreach draft and its approval state."""
        return f"{self.prefix}:draft:{company_id}"

    def claim(self, company_id: str) -> str:
        """String with a TTL: the prospect has a job in flight (across runs and days)."""
        return f"{self.prefix}:inflight:{company_id}"

    def progress(self, job_id: str) -> str:
        return f"{self.prefix}:progress:{job_id}"

    def tries(self, job_id: str) -> str:
        """Counter: the job's failed tries (a cancellation or a crash does not count)."""
        return f"{self.prefix}:tries:{job_id}"

    def dead_letter_marker(self, job_id: str) -> str:
        """String: the dead-letter entry of this job id, so it is written once."""
        return f"{self.prefix}:deadletter:{job_id}"

    @property
    def contacted(self) -> str:
        """Set: company ids that already have a draft; never prospected again."""
        return f"{self.prefix}:contacted"

    @property
    def approvals(self) -> str:
        """Stream: drafts awaiting human approval."""
        return f"{self.prefix}:stream:approvals"

    @property
    def events(self) -> str:
        """Stream: tracking events."""
        return f"{self.prefix}:stream:events"

    @property
    def dead_letters(self) -> str:
        """Stream: jobs that failed for good, with payload and error, for replay."""
        return f"{self.prefix}:stream:deadletter"
