"""What the outreach jobs are handed: settings turned into plain values, and their stores."""

from dataclasses import dataclass

from jobs.outreach_send.classify import ReplyClassifier
from jobs.outreach_send.drafts import DraftBook
from jobs.outreach_send.message import SenderIdentity
from jobs.outreach_send.outbox import Outbox
from jobs.outreach_send.replies_log import ReplyLog
from jobs.outreach_send.smtp import Mailer
from jobs.outreach_send.suppression import Suppressions


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
