"""What the outreach jobs are handed: settings turned into plain values, and their stores."""

from dataclasses import dataclass

from jobs.outreach.classify import ReplyClassifier
from jobs.outreach.drafts import DraftBook
from jobs.outreach.message import SenderIdentity
from jobs.outreach.outbox import Outbox
from jobs.outreach.replies_log import ReplyLog
from jobs.outreach.smtp import Mailer
from jobs.outreach.suppression import Suppressions


@dataclass(frozen=True)
class OutreachConfig:
    identity: SenderIdentity
    daily_cap: int
    lease_s: float
    suppress_not_interested: bool = False
    suppress_domain: bool = False


@dataclass(frozen=True)
class Outreach:
    config: OutreachConfig
    drafts: DraftBook
    outbox: Outbox
    suppressions: Suppressions
    classifier: ReplyClassifier
    replies: ReplyLog
    mailer: Mailer | None  # None: no SMTP server configured, sending is off
