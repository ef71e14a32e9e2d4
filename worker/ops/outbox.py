"""Resolve a send whose outcome is unknown (the worker stopped mid-send): a person says whether
it was delivered (`sent`) or not (`retry`: send it again). The send's dead letters go with it: a
person has decided what they were waiting for."""

from typing import Literal

from pydantic import BaseModel

from worker.ops import sends
from worker.ops.actor import Actor
from worker.ops.audit import audited
from worker.ops.context import Ops
from worker.ops.errors import Refused
from worker.ops.sends import SendQueued

RETRY_WARNING = (
    "a retry may send twice: the first send may have been delivered though its outcome is "
    "unknown; resolve it as sent if the message is found in the sent mail or at the recipient"
)


class ResolveAnswer(BaseModel):
    draft_id: str
    state: str  # the draft's, read back
    send: SendQueued | None  # for a retry: the new send job, read back
    dead_letters_removed: list[str]
    warning: str | None = None  # for a retry: it may send twice

    def text(self) -> str:
        line = f"{self.draft_id}: {self.state}"
        if self.send is not None:
            queued = "send queued as" if self.send.queued_now else "its send was already queued:"
            line += f"; {queued} {self.send.job_id} ({self.send.job_state})"
        if self.dead_letters_removed:
            line += f"; removed its dead letter(s) {', '.join(self.dead_letters_removed)}"
        return line


async def resolve(
    ops: Ops, actor: Actor, draft_id: str, outcome: Literal["sent", "retry"]
) -> ResolveAnswer:
    async with audited(ops, actor, "operate", f"resolve as {outcome}", f"draft {draft_id}") as said:
        sends.checked_draft_id(draft_id)
        if outcome not in ("sent", "retry"):
            raise Refused("resolve a send as sent or retry")
        book = sends.draft_book(ops)
        draft = await book.show(draft_id)
        result, before = await book.resolve(draft_id, sends.now_ms(), sent=outcome == "sent")
        if result != "done" or draft is None:
            raise sends.refused(draft_id, result, before, "resolve")
        retry = outcome == "retry"
        send = (
            await sends.queue_send(
                ops.client, book, draft_id, sends.send_job_id(draft_id, draft.attempts)
            )
            if retry
            else None
        )
        answer = ResolveAnswer(
            draft_id=draft_id,
            state=await sends.state_now(book, draft_id),
            send=send,
            dead_letters_removed=await sends.retire_send_letters(ops, draft_id),
            warning=RETRY_WARNING if retry else None,
        )
        said.line = answer.text()
        return answer
