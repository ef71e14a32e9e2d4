"""send_outreach: one approved draft out over SMTP, at most once.

The order is the guarantee: the outbox records `sending` (with a lease, under the daily cap,
after the suppression check) before the SMTP transaction starts, and the SMTP outcome is then
recorded by the same token. Whatever dies in between, a later try finds `sending` and does not
send again (see jobs/outreach/outbox.py).

Before the claim, a draft that may go out passes the two shared limits: the daily cap (spent:
the job is deferred to local midnight, when the next day's cap opens) and the per-minute
throttle (the engine's rate limiter, service `smtp`: deferred until the window frees). A
deferral spends no try and holds no slot. The claim counts the cap again, atomically, so a race
between replicas cannot send over it.
"""

import uuid
from datetime import datetime, time, timedelta
from typing import Literal

from pydantic import Field

from jobs.deps import Deps, Progress
from jobs.errors import Deferred, PermanentError
from jobs.models import Frozen
from jobs.outreach.drafting import SUBJECT_MAX, one_line
from jobs.outreach.message import build_message, draft_token, message_id
from jobs.outreach.smtp import DeliveryUnknown, SendingOff, SmtpDeferred, SmtpRejected
from jobs.prospecting.store import now_ms

SERVICE = "smtp"  # the sending throttle's name in the shared rate limiter
RESOLVE_HINT = "a person decides: python -m worker outbox resolve {id} --sent | --retry"


class SendRequest(Frozen):
    """Arguments of send_outreach. Enqueueing it approves a pending draft; `subject`/`body`
    are an application's edits, applied only to a draft still pending."""

    draft_id: str = Field(min_length=1, max_length=128)
    subject: str | None = Field(default=None, max_length=SUBJECT_MAX)
    body: str | None = Field(default=None, max_length=20_000)


class SendResult(Frozen):
    draft_id: str
    outcome: Literal["sent", "already_sent", "not_sent"]
    reason: str | None = None  # why not sent: rejected, failed, suppressed
    message_id: str | None = None
    smtp_reply: str | None = None


class SendOutcomeUnknown(PermanentError):
    """A try stopped mid-send; the draft is `unknown` and is never sent again on its own."""

    def __init__(self, message: str, draft_id: str) -> None:
        super().__init__(message)
        self.not_replayable = (
            "the send may have been delivered, which a replay cannot tell: a person decides with "
            f"prospect-worker outbox resolve {draft_id} --sent | --retry"
        )


async def send_failed(deps: Deps, request: SendRequest, reason: str) -> None:
    """Called by the runtime once a send job has failed for good: an approved draft says so.
    A pending one stays pending (a send refused before it recorded the approval: sending is
    off), and one the SMTP outcome already decided (sent, failed, unknown) stays as it is."""
    await deps.outreach.drafts.send_failed(request.draft_id, now_ms(), reason[:500])


def seconds_to_local_midnight(now: datetime, deps: Deps) -> float:
    local = now.astimezone(deps.config.tz)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=deps.config.tz)
    return max(1.0, (midnight - local).total_seconds())


def over_cap(deps: Deps) -> Deferred:
    """The day's cap is spent: wait for local midnight, when the next day's cap opens."""
    wait_s = seconds_to_local_midnight(deps.clock(), deps)
    return Deferred(wait_s, reason="daily_cap", limit=SERVICE)


async def send_outreach(deps: Deps, request: SendRequest, progress: Progress) -> SendResult:
    out, draft_id = deps.outreach, request.draft_id
    record = await out.drafts.show(draft_id)
    if record is None:
        raise PermanentError(f"no draft {draft_id!r} (never queued, or expired)")
    identity = out.config.identity
    token = draft_token(deps.keys.prefix, record.id, record.stream_id)
    mid = message_id(token, identity.address)
    claim_token, day = uuid.uuid4().hex, deps.today()
    if record.state in ("pending", "approved", "send_failed"):  # it may go out: limits first
        if out.mailer is None:
            raise SendingOff("sending is off: no SMTP server configured (PW_SMTP__HOST)")
        if record.state != "approved":
            # Enqueueing the send is how an application approves (and a replay of a send
            # that failed for good, how an operator sends again): recorded now, with its
            # edits, so a draft waiting for the cap or the throttle shows as approved.
            await out.drafts.approve(
                draft_id,
                now_ms(),
                subject=one_line(request.subject, SUBJECT_MAX) if request.subject else None,
                body=request.body,
            )
        if await out.outbox.sent_on(day) >= out.config.daily_cap:
            raise over_cap(deps)
        await deps.gate.acquire(SERVICE)

    await progress.update("claim")
    claim = await out.outbox.claim(
        draft_id,
        token=claim_token,
        now_ms=now_ms(),
        lease_ms=int(out.config.lease_s * 1000),
        day=day,
        cap=out.config.daily_cap,
        message_id=mid,
        draft_ttl_s=deps.config.draft_ttl_s,
    )
    outcome = claim.outcome
    if outcome == "sent":
        return SendResult(draft_id=draft_id, outcome="already_sent", message_id=mid)
    if outcome in ("rejected", "failed", "suppressed"):
        return SendResult(draft_id=draft_id, outcome="not_sent", reason=outcome, message_id=mid)
    if outcome == "busy":
        # Another try holds the lease (it is sending now, or died and its lease runs out): not
        # a failure of this one, so no try is spent; it looks again once the lease would lapse.
        raise Deferred(claim.wait_ms / 1000, reason="send_in_progress", limit=SERVICE)
    if outcome in ("lapsed", "unknown"):
        raise SendOutcomeUnknown(
            f"send of draft {draft_id} ({mid}) may or may not have been delivered: "
            + RESOLVE_HINT.format(id=draft_id),
            draft_id,
        )
    if outcome == "over_cap":  # another replica took the last of the cap since the check
        raise over_cap(deps)
    if outcome == "missing":
        raise PermanentError(f"draft {draft_id!r} disappeared")
    return await _transaction(deps, draft_id, claim_token, day, mid, token)


async def _transaction(
    deps: Deps, draft_id: str, claim_token: str, day: str, mid: str, token: str
) -> SendResult:
    out = deps.outreach
    assert out.mailer is not None  # noqa: S101 - checked before the claim
    record = await out.drafts.show(draft_id)
    if record is None:
        raise PermanentError(f"draft {draft_id!r} disappeared")
    message = build_message(
        out.config.identity,
        to=record.to,
        subject=record.subject,
        body=record.body,
        message_id_value=mid,
        draft_key=token,
    )
    finish = out.outbox.finish
    try:
        reply = await out.mailer.send(
            message, sender=out.config.identity.address, recipient=record.to
        )
    except SmtpDeferred as exc:
        await finish(
            draft_id, token=claim_token, to="approved", now_ms=now_ms(), day=day, reason=str(exc)
        )
        raise
    except SmtpRejected as exc:
        await finish(
            draft_id,
            token=claim_token,
            to="failed",
            now_ms=now_ms(),
            day=day,
            reason=str(exc),
            event="send_failed",
        )
        if exc.hard_bounce:
            await out.suppressions.add(
                record.to,
                reason=f"bounced: {exc}",
                now_ms=now_ms(),
                whole_domain=out.config.suppress_domain,
                event="bounced",
                company_id=draft_id,
            )
        raise
    except DeliveryUnknown as exc:
        await finish(
            draft_id,
            token=claim_token,
            to="unknown",
            now_ms=now_ms(),
            day=day,
            reason=str(exc),
            event="send_unknown",
        )
        raise SendOutcomeUnknown(f"{exc}; {RESOLVE_HINT.format(id=draft_id)}", draft_id) from None
    await finish(draft_id, token=claim_token, to="sent", now_ms=now_ms(), day=day, event="sent")
    return SendResult(draft_id=draft_id, outcome="sent", message_id=mid, smtp_reply=reply)
