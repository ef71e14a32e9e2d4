"""Typed records that cross a boundary: provider answers, pipeline state, job payloads, results."""

import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobs.errors import InvalidPayload


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- what the providers tell us -------------------------------------------------------------


class Company(Frozen):
    """One company as discovery returns it (normalised from the provider's shape)."""

    id: str = Field(min_length=1, max_length=128)
    name: str
    domain: str
    website: str | None = None  # URL as the provider gave it; untrusted
    industry: str | None = None
    employee_count: int | None = Field(default=None, ge=0)
    country: str | None = None
    region: str | None = None
    founded: int | None = None
    tags: tuple[str, ...] = ()


class Contact(Frozen):
    email: str
    first_name: str | None = None
    last_name: str | None = None
    position: str | None = None
    confidence: int = Field(default=0, ge=0, le=100)
    source: Literal["email_finder", "website"] = "email_finder"


class WebsiteInfo(Frozen):
    """What one fetch of a company's site told us."""

    url: str  # final URL after redirects
    status: int
    title: str | None = None
    description: str | None = None
    has_contact_form: bool = False
    emails: tuple[str, ...] = ()


class Enrichment(Frozen):
    website: WebsiteInfo | None = None
    website_error: str | None = None  # why the site could not be read; enrichment goes on
    contact: Contact | None = None


class ScoreFactor(Frozen):
    name: Literal["industry", "size", "region", "signals", "website"]
    points: float  # earned, 0..weight
    weight: float  # the most this factor can give
    reason: str


class Score(Frozen):
    total: int = Field(ge=0, le=100)
    factors: tuple[ScoreFactor, ...]


class Draft(Frozen):
    to: str
    subject: str
    body: str
    writer: str  # "template" or "llm:<model>"


# Priority classes, first to last: replies, then prospects by ICP rank class, then
# maintenance. The engine turns a class into a place in the queue (worker/scheduling/queueorder.py).
Priority = Literal["reply", "hot", "warm", "cold", "maintenance"]


# --- job payloads and results ---------------------------------------------------------------


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DailyRunRequest(Frozen):
    """Arguments of daily_prospect_queue; every field is optional so a bare enqueue works.

    `run_date` other than today is a backfill and must say so (`backfill: true`): the run id
    is the date, and a run for the wrong day by mistake would plan that day's run for it."""

    run_date: date | None = None
    backfill: bool = False

    @field_validator("run_date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        # Only YYYY-MM-DD: pydantic would also take a number as a Unix time.
        if isinstance(value, str) and not _ISO_DATE.match(value):
            raise ValueError("must be a date as YYYY-MM-DD")
        if value is not None and not isinstance(value, str | date):
            raise ValueError("must be a date as YYYY-MM-DD")
        return value


def resolve_run_id(request: DailyRunRequest, today: date) -> str:
    """The run's id: its local day. Another day only as an explicit backfill of a past day."""
    day = request.run_date or today
    if day > today:
        raise InvalidPayload(f"run_date {day} is in the future (today is {today})")
    if day != today and not request.backfill:
        raise InvalidPayload(
            f"run_date {day} is not today ({today}); set backfill: true to run for a past day"
        )
    return day.isoformat()


class ProspectJob(Frozen):
    """Arguments of process_prospect: everything it needs, so it never re-asks discovery."""

    run_id: str
    company: Company
    rank: int = Field(ge=1)


SkipReason = Literal[
    "already_contacted",
    "already_in_flight",
    "no_contact_email",
    "below_min_score",
    "quota_reached",
    "already_drafted",  # another run queued a draft for this company first
    "suppressed",  # the contact (or its domain) unsubscribed, bounced or declined for good
]


class ProspectResult(Frozen):
    company_id: str
    # "refused": the job's run did not fan it out (Redis lost the run): nothing was recorded.
    outcome: Literal["queued", "skipped", "refused"]
    skip_reason: SkipReason | None = None
    score: int | None = None
    draft_id: str | None = None  # the queued draft's id (`drafts show ID`): its company's
    approval_entry: str | None = None  # the draft's entry in the approval stream
    duration_s: float


class FanoutPlan(Frozen):
    """What a daily run decided before fanning out, kept so every try fans out the same."""

    quota_used_before: int
    discovered: int
    chosen: tuple[Company, ...]  # in rank order
    skipped: dict[str, int]  # before the fan-out: already contacted, ranked below the cutoff
    discovery_incomplete: str | None = None  # why discovery stopped before its last page


class DailyRunResult(Frozen):
    run_id: str
    quota_limit: int
    quota_used_before: int
    discovered: int
    fanned_out: int  # the run's total: per-prospect jobs fanned out by every try
    added: int = 0  # of those, the jobs this try enqueued (0: an earlier try or run had)
    skipped: dict[str, int]
    discovery_incomplete: str | None = None  # e.g. "malformed page 3: ..."
    duration_s: float
    started_at: datetime


class RunSummary(Frozen):
    """The daily run seen whole: the fan-out plus what its per-prospect jobs did so far."""

    run_id: str
    # failed: the run's own job failed for good before its fan-out closed (`fanout_error`);
    # the jobs it fanned out still run and are counted.
    state: Literal["running", "complete", "failed"]
    discovered: int
    total: int  # per-prospect jobs fanned out
    done: int  # of those, finished either way
    enriched: int
    scored: int
    drafted: int
    queued: int
    failed: int
    skipped: dict[str, int]
    duration_s: float | None  # from the first fan-out to the last job's end, once complete
    discovery_incomplete: str | None = None  # discovery ended early: the run saw part of it
    fanout_error: str | None = None


class CleanupRequest(Frozen):
    """Arguments of cleanup: none; it trims by the retention settings."""


class CleanupResult(Frozen):
    trimmed: dict[str, int]  # stream -> entries removed for age
