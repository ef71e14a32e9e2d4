"""Approve (as it is, or edited), reject, and approve several drafts: the approval workflow.

Approving marks the draft approved and queues its `send_outreach` job as `send:<draft id>`, so
approving twice, or two people approving at once, queue one send (and the outbox sends a draft
at most once whatever is queued). A draft whose send failed for good (`send_failed`) is approved
again the same way, and a new send is queued for it: approving is how a person says "send
this", and the old send's dead letter goes, since nothing is left for it to do. An edit lands
only on a draft that awaits approval, in the same step that approves it: the edited text is the
text the send reads. Every answer is read back from Redis after the action.
"""

from pydantic import BaseModel

from worker.ops.actor import Actor
from worker.ops.audit import audited
from worker.ops.context import Ops
from worker.ops.errors import Reason, Refused
from worker.ops.sends import (
    WAITING,
    SendQueued,
    checked_draft_id,
    draft_book,
    now_ms,
    queue_send,
    refused,
    retire_send_letters,
    send_job_id,
    state_now,
)

BODY_CHARS = 20_000  # as the send job's payload allows
REASON_CHARS = 500
MAX_BATCH = 500


class ApproveAnswer(SendQueued):
    draft_id: str
    state: str  # the draft's, read back after the approval (a worker may be sending it already)
    sent_again: bool  # its last send had failed for good: this approval sends it again
    dead_letters_removed: list[str]
    edited: bool = False

    def text(self) -> str:
        draft, job = self.draft_id, self.job_id
        verb = "edited and approved" if self.edited else "approved"
        if not self.queued_now and self.job_state in WAITING:
            return (
                f"{verb} {draft}; its send {job} was already queued ({self.job_state}): "
                "nothing new queued"
            )
        if not self.queued_now:  # it ran as this approval came: see queue_send
            return (
                f"{verb} {draft}; its send {job} has run ({self.job_state}): nothing new "
                f"queued; draft now {self.state}"
            )
        head = f"{verb} {draft}"
        if self.sent_again:
            head += " again: its last send had failed for good"
        line = f"{head}; send queued as {job} ({self.job_state}); draft now {self.state}"
        if self.dead_letters_removed:
            line += f"; removed its old dead letter(s) {', '.join(self.dead_letters_removed)}"
        return line


class ApproveRefused(BaseModel):
    """One draft of a batch that was not approved, and why (the others went on)."""

    draft_id: str
    refused: Reason
    message: str

    def text(self) -> str:
        return f"not approved {self.draft_id}: {self.message}"


class RejectAnswer(BaseModel):
    draft_id: str
    state: str  # read back

    def text(self) -> str:
        return f"rejected {self.draft_id}"


async def approve(ops: Ops, actor: Actor, draft_id: str) -> ApproveAnswer:
    """Approve the draft as it is and queue its send."""
    async with audited(ops, actor, "drafts", "approve", f"draft {draft_id}") as outcome:
        answer = await _approve(ops, checked_draft_id(draft_id), None, None)
        outcome.line = answer.text()
        return answer


async def edit_and_approve(
    ops: Ops, actor: Actor, draft_id: str, subject: str | None, body: str | None
) -> ApproveAnswer:
    """Approve the draft with this subject and/or body, which is then what is sent. Only a
    draft that awaits approval (pending, or its send failed for good) takes an edit."""
    async with audited(ops, actor, "drafts", "edit and approve", f"draft {draft_id}") as outcome:
        # On use: drafting loads the LLM client (httpx), which a door's --help should not.
        from jobs.outreach.drafting import SUBJECT_MAX

        checked_draft_id(draft_id)
        if subject is None and body is None:
            raise Refused("an edit needs a subject or a body")
        if subject is not None and not (
            0 < len(subject.strip()) <= SUBJECT_MAX and subject.strip().isprintable()
        ):
            # A line break in a header would be a header injection: one line only.
            raise Refused(f"the subject must be one line of 1 to {SUBJECT_MAX} characters")
        if body is not None and not 0 < len(body.strip()) <= BODY_CHARS:
            raise Refused(f"the body must be 1 to {BODY_CHARS:,} characters")
        answer = await _approve(
            ops, draft_id, subject.strip() if subject is not None else None, body
        )
        outcome.line = answer.text()
        return answer


async def _approve(ops: Ops, draft_id: str, subject: str | None, body: str | None) -> ApproveAnswer:
    book = draft_book(ops)
    result, before = await book.approve(draft_id, now_ms(), subject=subject, body=body)
    if result != "done":
        edited = subject is not None or body is not None
        refusal = refused(draft_id, result, before, "edit" if edited else "approve")
        if edited and before == "approved":
            refusal = Refused(
                f"{refusal}: an edit lands only before approval, and its send is queued",
                reason="conflict",
            )
        raise refusal
    send = await queue_send(ops.client, book, draft_id, send_job_id(draft_id))
    again = before == "send_failed"
    removed = await retire_send_letters(ops, draft_id) if again else []
    return ApproveAnswer(
        draft_id=draft_id,
        state=await state_now(book, draft_id),
        sent_again=again,
        dead_letters_removed=removed,
        edited=subject is not None or body is not None,
        **send.model_dump(),
    )


async def approve_many(
    ops: Ops, actor: Actor, draft_ids: list[str]
) -> list[ApproveAnswer | ApproveRefused]:
    """Approve each draft as `approve` does (one audit entry each); a draft that cannot be
    approved is answered with why, and the others go on."""
    ids = list(dict.fromkeys(draft_ids))
    if not actor.may("drafts") or not 0 < len(ids) <= MAX_BATCH:
        # One refusal for the whole batch, in the audit log once.
        target = f"{len(ids)} drafts"
        async with audited(ops, actor, "drafts", "approve several", target):
            raise Refused(f"approve 1 to {MAX_BATCH} drafts at once")
    answers: list[ApproveAnswer | ApproveRefused] = []
    for draft_id in ids:
        try:
            answers.append(await approve(ops, actor, draft_id))
        except Refused as exc:
            answers.append(ApproveRefused(draft_id=draft_id, refused=exc.reason, message=str(exc)))
    return answers


async def reject(ops: Ops, actor: Actor, draft_id: str, reason: str) -> RejectAnswer:
    """Reject the draft: it is never sent. The reason is kept with it."""
    async with audited(ops, actor, "drafts", "reject", f"draft {draft_id}") as outcome:
        checked_draft_id(draft_id)
        if not 0 < len(reason.strip()) <= REASON_CHARS:
            raise Refused(f"the reason must be 1 to {REASON_CHARS} characters")
        book = draft_book(ops)
        result, before = await book.reject(draft_id, now_ms(), reason.strip())
        if result != "done":
            raise refused(draft_id, result, before, "reject")
        answer = RejectAnswer(draft_id=draft_id, state=await state_now(book, draft_id))
        outcome.line = answer.text()
        return answer
