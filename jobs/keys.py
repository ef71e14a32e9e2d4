"""Every Redis key and stream the domain writes, named in one place, with how long it lives.

The worker's own keys (queue order, leases, rate windows, pause, wake-ups, progress, dead
letters, replica stats) are in worker/keys.py, which extends this keyspace under one prefix.

Each one expires by TTL except: the contacted set (kept for good, see `contacted`) and the
streams, which are trimmed by age (jobs/retention.py), the dead-letter stream by replay, purge
and its length cap.
"""

from dataclasses import dataclass


def prospect_job_id(run_id: str, company_id: str) -> str:
    """The per-prospect job of a run: deterministic, so a run never enqueues a prospect twice.

    It is also what the prospect's claim key holds while the job lives."""
    return f"prospect:{run_id}:{company_id}"


def parse_prospect_job_id(job_id: str) -> tuple[str, str] | None:
    """(run id, company id) of a per-prospect job id; None for any other job."""
    kind, _, rest = job_id.partition(":")
    run_id, _, company_id = rest.partition(":")
    return (run_id, company_id) if kind == "prospect" and run_id and company_id else None


@dataclass(frozen=True)
class Keys:
    prefix: str = "pw"

    def run(self, run_id: str) -> str:
        """Hash: the daily run's fan-out and the tally of its per-prospect jobs. TTL 14 days."""
        return f"{self.prefix}:run:{run_id}"

    def run_outcomes(self, run_id: str) -> str:
        """Hash: company id -> the outcome its prospect job recorded in the run (decided once).
        TTL 14 days, as the run."""
        return f"{self.prefix}:run:{run_id}:outcomes"

    def run_members(self, run_id: str) -> str:
        """Set: the job ids the run's fan-out added (its own planned jobs), written in the step
        that counts them in `total`. In a run opened with the `members` flag (every run opened
        by this version), a tally or an approval for any other job is refused, so a job of a
        run Redis lost never writes into a run opened since. TTL: the run's."""
        return f"{self.prefix}:run:{run_id}:members"

    def run_plan(self, run_id: str) -> str:
        """String: the run's fan-out plan (quota seen, prospects chosen), decided once, so a
        retry fans out the same prospects instead of ranking again. TTL 14 days."""
        return f"{self.prefix}:run:{run_id}:plan"

    def run_discovery(self, run_id: str) -> str:
        """Hash: the run's discovery so far (companies per page, the next scroll token), so a
        retry resumes paging; deleted once the run's plan is kept, else TTL 14 days."""
        return f"{self.prefix}:run:{run_id}:discovery"

    def quota(self, day: str) -> str:
        """Counter: drafts queued for approval on that local day. TTL 3 days."""
        return f"{self.prefix}:quota:{day}"

    def prospect(self, run_id: str, company_id: str) -> str:
        """Hash: a prospect's checkpoints in one run (enrichment, score, draft, the queue step's
        outcome): retries resume. TTL 7 days."""
        return f"{self.prefix}:prospect:{run_id}:{company_id}"

    def draft(self, company_id: str) -> str:
        """Hash: one outreach draft and its approval state. TTL: the draft_ttl_days setting."""
        return f"{self.prefix}:draft:{company_id}"

    def claim(self, company_id: str) -> str:
        """String: the prospect has a job in flight (across runs and days); holds the job id.
        Expires with the job key (24 h), released when the job's outcome is recorded."""
        return f"{self.prefix}:inflight:{company_id}"

    def message(self, message_id: str) -> str:
        """String: the draft (company id) a Message-ID we sent belongs to, so a reply's
        In-Reply-To finds it. TTL: the draft's."""
        return f"{self.prefix}:message:{message_id}"

    def sent(self, day: str) -> str:
        """Counter: sends started on that local day, every replica's (the daily sending cap).
        TTL 3 days."""
        return f"{self.prefix}:sent:{day}"

    def reply(self, reply_id: str) -> str:
        """String: this inbound reply was processed (its effects recorded once). TTL 30 days."""
        return f"{self.prefix}:reply:{reply_id}"

    @property
    def suppressed_addresses(self) -> str:
        """Set: addresses never emailed or prospected again (unsubscribe, hard bounce, and by
        a setting not-interested). No TTL on purpose: a suppression is for good."""
        return f"{self.prefix}:suppressed:addresses"

    @property
    def suppressed_domains(self) -> str:
        """Set: domains suppressed whole (the suppress_domain setting). No TTL, as above."""
        return f"{self.prefix}:suppressed:domains"

    @property
    def suppression_reasons(self) -> str:
        """Hash: address or @domain -> why and when it was suppressed. No TTL, as above."""
        return f"{self.prefix}:suppressed:reasons"

    @property
    def unknown_sends(self) -> str:
        """Sorted set: drafts whose send ended `unknown` (a person decides), scored by when
        (ms), written in the step that marks the draft; an id leaves when the draft leaves
        `unknown`. No TTL: a draft that expired meanwhile is dropped by whoever reads it."""
        return f"{self.prefix}:outbox:unknown"

    @property
    def contacted(self) -> str:
        """Set: company ids that already have a draft; never prospected again.

        Kept without a TTL on purpose: it is the do-not-prospect-again list, and it outlives
        the drafts. It grows by at most the daily limit a day (50 ids by default: about 1 MB
        a year); an id leaves it only by hand (SREM), e.g. for a data-protection erasure."""
        return f"{self.prefix}:contacted"

    @property
    def approvals(self) -> str:
        """Stream: drafts awaiting human approval. Trimmed by age: the draft TTL."""
        return f"{self.prefix}:stream:approvals"

    @property
    def events(self) -> str:
        """Stream: tracking events. Trimmed by age: the event_retention_days setting."""
        return f"{self.prefix}:stream:events"
