"""What approving and resolving share: the draft book, queueing a draft's send job (one per
draft, by its id), and retiring the dead letters of its earlier sends."""

import time

from pydantic import BaseModel

from jobs.outreach.drafts import DraftBook, Transition
from worker.client import JobIdTaken, QueueClient
from worker.ops.context import Ops
from worker.ops.dead_letters import dead_letter_stream
from worker.ops.errors import Refused
from worker.registry import SEND_JOB

# The send job states in which it will still run: approving again queues nothing new then.
WAITING = ("queued", "deferred", "in_progress")
DRAFT_ID_CHARS = 128  # as the send job's payload allows


def draft_book(ops: Ops) -> DraftBook:
    return DraftBook(ops.redis, ops.keys)


def checked_draft_id(draft_id: str) -> str:
    if not 0 < len(draft_id) <= DRAFT_ID_CHARS or not draft_id.isprintable():
        raise Refused(f"a draft id is 1 to {DRAFT_ID_CHARS} printable characters")
    return draft_id


def send_job_id(draft_id: str, attempt: int = 0) -> str:
    return f"send:{draft_id}" if attempt == 0 else f"send:{draft_id}:retry{attempt}"


def now_ms() -> int:
    return int(time.time() * 1000)


class SendQueued(BaseModel):
    """A send job as it is after an action asked for it, read back from Redis."""

    job_id: str
    queued_now: bool  # False: a job of that id was there already, and nothing new was queued
    job_state: str


async def queue_send(
    client: QueueClient, book: DraftBook, draft_id: str, job_id: str
) -> SendQueued:
    """Queue the draft's send as `job_id`. A job of that id that will still run is left to do
    it (so two approvals queue one send); one that has ended (its result kept for a day) cannot
    run again, so a new id is used, unless that send has taken the draft on meanwhile (a second
    approval that came as the first one's send ran). The outbox sends a draft at most once
    whatever is queued; this keeps it to one job too."""
    try:
        await client.enqueue(SEND_JOB, {"draft_id": draft_id}, job_id=job_id)
        queued_now = True
    except JobIdTaken:
        existing = await client.report(job_id)
        if existing.state in WAITING or await state_now(book, draft_id) != "approved":
            return SendQueued(job_id=job_id, queued_now=False, job_state=existing.state)
        job_id = f"{job_id}:again{now_ms()}"
        await client.enqueue(SEND_JOB, {"draft_id": draft_id}, job_id=job_id)
        queued_now = True
    report = await client.report(job_id)
    return SendQueued(job_id=job_id, queued_now=queued_now, job_state=report.state)


async def retire_send_letters(ops: Ops, draft_id: str) -> list[str]:
    """Remove the dead letters of this draft's sends: once the draft is sent again or resolved
    by a person, they wait for nothing, and a replay of one could only mislead."""
    letters = dead_letter_stream(ops)
    found = [
        letter.id
        for letter in await letters.list(function=SEND_JOB, limit=100_000)
        if isinstance(letter.payload, dict) and letter.payload.get("draft_id") == draft_id
    ]
    if found:
        await letters.purge(ids=found)
    return found


async def state_now(book: DraftBook, draft_id: str) -> str:
    """The draft's state read back after an action (a worker may be sending it already)."""
    draft = await book.show(draft_id)
    return draft.state if draft is not None else "missing"


def refused(draft_id: str, outcome: Transition, before: str, action: str) -> Refused:
    if outcome == "missing":
        return Refused(f"no draft {draft_id!r}", reason="not_found")
    return Refused(f"cannot {action} draft {draft_id}: it is {before}", reason="conflict")
