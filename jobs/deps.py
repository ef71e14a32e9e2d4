"""What a job body is handed: typed dependencies, built once per worker process.

The engine (worker/) builds these from settings and implements the two engine-side protocols,
`Enqueuer` and `Progress`, so job bodies never import arq.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from jobs.clients.discovery import CompanySearchClient
from jobs.clients.email_finder import EmailFinderClient
from jobs.clients.gate import OpenGate, RateGate
from jobs.keys import Keys
from jobs.models import Priority
from jobs.outreach.config import Outreach
from jobs.outreach.drafting import DraftWriter
from jobs.prospecting.icp import IcpProfile
from jobs.prospecting.paging import PageRetry
from jobs.prospecting.runs import RunLedger
from jobs.prospecting.store import DRAFT_TTL_S, ProspectStore
from jobs.web.fetch import WebsiteFetcher


@dataclass(frozen=True)
class FanoutJob:
    job_id: str
    function: str
    payload: dict[str, Any]
    priority: Priority = "maintenance"
    rank: int | None = None  # orders jobs within their class (1 first)
    # Held while the job lives, so another run cannot start the same prospect meanwhile.
    claim_key: str | None = None
    # A hash whose `total` field counts the job in the same atomic step that adds it (and whose
    # `finished_ms` that step clears), so a retried fan-out never loses or doubles its count.
    # The hash must be open (`started_ms` set): a job for a run that is gone is not added.
    count_key: str | None = None
    # A set that gets the job id in the same step (the run's own planned jobs).
    members_key: str | None = None


# "unopened": the count key's run is not open (Redis lost it); nothing was written.
FanoutOutcome = Literal["added", "duplicate", "claimed", "unopened"]

# What a refused write was: a prospect's tally, its approval (with its quota count), or a
# fan-out job, each for a run that was not opened or a job that is not the run's own.
RefusedRecord = Literal["tally", "approval", "fanout"]


class Enqueuer(Protocol):
    async def enqueue_many(self, jobs: Sequence[FanoutJob]) -> list[FanoutOutcome]: ...


class Progress(Protocol):
    async def update(
        self,
        stage: str,
        *,
        done: int | None = None,
        total: int | None = None,
        **counters: Any,
    ) -> None: ...


@dataclass(frozen=True)
class Sender:
    name: str
    company: str
    value_proposition: str


@dataclass(frozen=True)
class PipelineConfig:
    tz: ZoneInfo
    daily_limit: int
    discovery_cap: int
    fanout_headroom: float
    sender: Sender
    page_retry: PageRetry = field(default_factory=PageRetry)
    draft_ttl_s: int = DRAFT_TTL_S
    event_retention_s: int = 30 * 86_400


@dataclass(frozen=True)
class Deps:
    keys: Keys
    store: ProspectStore
    ledger: RunLedger
    config: PipelineConfig
    icp: IcpProfile
    discovery: CompanySearchClient
    email_finder: EmailFinderClient
    fetcher: WebsiteFetcher
    writer: DraftWriter
    enqueuer: Enqueuer
    outreach: Outreach
    # The shared rate limits the provider clients send through (read by metrics too).
    gate: RateGate = field(default_factory=OpenGate)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Waits inside a job (between retries of one page); tests pass one that does not sleep.
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # Counts a record refused for belonging to no open run (the worker's metric).
    refused: Callable[[RefusedRecord], None] = field(default=lambda record: None)

    def local_date(self) -> date:
        """The local calendar day the quota and run ids are counted in."""
        return self.clock().astimezone(self.config.tz).date()

    def today(self) -> str:
        return self.local_date().isoformat()
