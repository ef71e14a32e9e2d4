"""process_reply: an inbound reply matched to its draft, classified, recorded once.

The application that receives mail enqueues it with the raw header block and the text. The
reply is matched by In-Reply-To / References to the Message-ID the send gave the draft. An
unsubscribe, a bounce and (by a setting) a not-interested reply suppress the address first:
that step is idempotent, so a try that dies after it loses nothing; the reply's event and the
draft's update are then written once per reply (keyed by the reply's own Message-ID).
"""

import hashlib
from email.parser import HeaderParser
from email.utils import parseaddr

from pydantic import Field

from jobs.deps import Deps, Progress
from jobs.models import Frozen
from jobs.outreach.classify import Classification, ReplyFacts, ReplyKind
from jobs.outreach.message import referenced_ids
from jobs.outreach.suppression import normalise_address
from jobs.prospecting.store import now_ms

TEXT_CHARS = 20_000
EVENT_FOR: dict[ReplyKind, str] = {"unsubscribe": "unsubscribed", "bounce": "bounced"}


class ReplyRequest(Frozen):
    """Arguments of process_reply, as the application that receives mail enqueues them."""

    headers: str = Field(max_length=100_000)  # the raw header block
    text: str = Field(default="", max_length=500_000)  # the plain-text body
    # An application that already knows (a one-click unsubscribe, a bounce it parsed).
    kind: ReplyKind | None = None


class ReplyResult(Frozen):
    reply_id: str
    draft_id: str | None
    kind: ReplyKind
    classifier: str
    reason: str
    suppressed: tuple[str, ...] = ()
    repeat: bool = False  # this reply was processed before: nothing recorded twice


def parse_reply(request: ReplyRequest) -> tuple[str, list[str], ReplyFacts]:
    """(reply id, referenced Message-IDs, facts) from the raw headers and text."""
    headers = HeaderParser().parsestr(request.headers)
    own_id = (headers.get("Message-ID") or "").strip()
    reply_id = (
        own_id
        or hashlib.sha256((request.headers + "\n\n" + request.text).encode()).hexdigest()[:32]
    )
    refs = referenced_ids(headers.get("In-Reply-To"), headers.get("References"))
    facts = ReplyFacts(
        sender=normalise_address(parseaddr(headers.get("From") or "")[1]),
        subject=str(headers.get("Subject") or "")[:500],
        text=request.text[:TEXT_CHARS],
        auto_submitted=str(headers.get("Auto-Submitted") or ""),
        content_type=str(headers.get("Content-Type") or ""),
    )
    return reply_id, refs, facts


async def process_reply(deps: Deps, request: ReplyRequest, progress: Progress) -> ReplyResult:
    out = deps.outreach
    reply_id, refs, facts = parse_reply(request)
    await progress.update("match")
    draft_id = None
    for ref in refs:  # In-Reply-To first, then References oldest to newest
        draft_id = await out.outbox.draft_for_message(ref)
        if draft_id is not None:
            break
    draft = await out.drafts.show(draft_id) if draft_id else None

    await progress.update("classify")
    if request.kind is not None:
        found = Classification(kind=request.kind, reason="given", classifier="application")
    else:
        found = await out.classifier.classify(facts)

    suppressed: list[str] = []
    suppress = found.kind in ("unsubscribe", "bounce") or (
        found.kind == "not_interested" and out.config.suppress_not_interested
    )
    if suppress:
        # A bounce names no person in From (the mail system wrote it): the draft's address
        # bounced. Anyone else asked, from the address they wrote from and the one we used.
        targets = [] if found.kind == "bounce" else [facts.sender]
        if draft is not None:
            targets.append(normalise_address(draft.to))
        for address in dict.fromkeys(target for target in targets if "@" in target):
            await out.suppressions.add(
                address,
                reason=f"{found.kind}: {found.reason}",
                now_ms=now_ms(),
                whole_domain=out.config.suppress_domain,
                event=EVENT_FOR.get(found.kind, "suppressed"),
                company_id=draft_id or "",
            )
            suppressed.append(address)

    await progress.update("record")
    recorded = await out.replies.record(reply_id, draft_id, facts, found)
    return ReplyResult(
        reply_id=reply_id,
        draft_id=draft_id,
        kind=found.kind,
        classifier=found.classifier,
        reason=found.reason,
        suppressed=tuple(suppressed),
        repeat=not recorded,
    )
