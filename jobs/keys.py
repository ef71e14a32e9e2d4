"""Every Redis key and stream the pipeline writes, named in one place."""

from dataclasses import dataclass


def prospect_job_id(run_id: str, company_id: str) -> str:
    """The per-prospect job of a run: deterministic, so a run never enqueues a prospect twice.

    It is also what the prospect's claim key holds while the job lives."""
    return f"prospect:{run_id}:{company_id}"


@dataclass(frozen=True)
class Keys:
    prefix: str = "pw"

    def run(self, run_id: str) -> str:
        """Hash: the daily run's fan-out and the tally of its per-prospect jobs."""
        return f"{self.prefix}:run:{run_id}"

    def run_outcomes(self, run_id: str) -> str:
        """Hash: company id -> the outcome its prospect job recorded in the run (decided once)."""
        return f"{self.prefix}:run:{run_id}:outcomes"

    def run_plan(self, run_id: str) -> str:
        """String: the run's fan-out plan (quota seen, prospects chosen), decided once, so a
        retry fans out the same prospects instead of ranking again."""
        return f"{self.prefix}:run:{run_id}:plan"

    def run_discovery(self, run_id: str) -> str:
        """Hash: the run's discovery so far (companies per page, the next scroll token), so a
        retry resumes paging; dropped once the run's plan is kept."""
        return f"{self.prefix}:run:{run_id}:discovery"

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
