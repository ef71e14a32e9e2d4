"""Approval and the outbox: `drafts list|show`, `approve`, `reject`, `outbox list|resolve`.

`approve` marks the draft approved and enqueues its `send_outreach` job (job id
`send:<draft id>`, so approving twice queues one send). A draft whose send failed for good
(`send_failed`) is approved again the same way, and a new send is queued for it: approving is
how an operator says "send this", and the old send's dead letter goes, since nothing is left
for it to do. `outbox resolve` answers for a send whose outcome is unknown: `--sent` (it was
delivered) or `--retry` (it was not: send again). Every answer is read back from Redis: the
draft's state, and the send job's, as they are after the command.
"""

import time
from collections.abc import Awaitable, Callable

import click
from pydantic import BaseModel

from jobs.outreach.drafts import STATES, DraftBook, DraftRecord, DraftState, Transition
from settings import Settings
from worker.cli.base import CliState, cli, pass_state, run_async
from worker.cli.output import EXIT_OK, CliError, Output, columns, json_option, table
from worker.client import JobIdTaken, QueueClient
from worker.connections import JOB_EXPIRES_MS
from worker.keys import WorkerKeys
from worker.registry import SEND_JOB, job_specs
from worker.runtime.deadletter import DeadLetters

# The send job states in which it will still run: approving again queues nothing new then.
WAITING = ("queued", "deferred", "in_progress")
# Drafts whose send a person may have to look at, with what to do about each.
OUTBOX_STATES: dict[DraftState, str] = {
    "sending": "being sent now",
    "unknown": "prospect-worker outbox resolve {id} --sent | --retry",
    "send_failed": "fix the cause, then prospect-worker approve {id}",
}


def send_job_id(draft_id: str, attempt: int = 0) -> str:
    return f"send:{draft_id}" if attempt == 0 else f"send:{draft_id}:retry{attempt}"


async def with_book(
    settings: Settings, work: Callable[[DraftBook, QueueClient], Awaitable[int]]
) -> int:
    client = await QueueClient.connect(settings, specs=job_specs(settings), conn_retries=0)
    try:
        return await work(DraftBook(client.redis, WorkerKeys(settings.key_prefix)), client)
    finally:
        await client.close()


class SendQueued(BaseModel):
    """A send job as it is after a command asked for it, read back from Redis."""

    job_id: str
    queued_now: bool  # False: a job of that id was there already, and nothing new was queued
    job_state: str


async def queue_send(client: QueueClient, draft_id: str, job_id: str) -> SendQueued:
    """Queue the draft's send as `job_id`. A job of that id that will still run is left to do
    it; one that has ended (its result kept for a day) cannot run again, so a new id is used."""
    try:
        await client.enqueue(SEND_JOB, {"draft_id": draft_id}, job_id=job_id)
        queued_now = True
    except JobIdTaken:
        existing = await client.report(job_id)
        if existing.state in WAITING:
            return SendQueued(job_id=job_id, queued_now=False, job_state=existing.state)
        job_id = f"{job_id}:again{now_ms()}"
        await client.enqueue(SEND_JOB, {"draft_id": draft_id}, job_id=job_id)
        queued_now = True
    report = await client.report(job_id)
    return SendQueued(job_id=job_id, queued_now=queued_now, job_state=report.state)


async def retire_send_letters(settings: Settings, client: QueueClient, draft_id: str) -> list[str]:
    """Remove the dead letters of this draft's sends: once the draft is sent again or resolved
    by a person, they wait for nothing, and a replay of one could only mislead."""
    letters = DeadLetters(
        client.redis,
        WorkerKeys(settings.key_prefix),
        queue_name=settings.queue_name,
        job_expires_ms=JOB_EXPIRES_MS,
    )
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


def now_ms() -> int:
    return int(time.time() * 1000)


def refused(draft_id: str, outcome: Transition, before: str, action: str) -> CliError:
    if outcome == "missing":
        return CliError(
            f"no draft {draft_id!r}", hint="prospect-worker drafts list shows the drafts"
        )
    return CliError(f"cannot {action} draft {draft_id}: it is {before}")


def render_draft(draft: DraftRecord) -> str:
    rows: list[tuple[str, object]] = [
        ("id", draft.id),
        ("state", draft.state),
        ("to", draft.to),
        ("subject", draft.subject),
        ("score", draft.score if draft.score is not None else "-"),
        ("writer", draft.writer),
    ]
    rows += [
        (name, value)
        for name, value in (
            ("reason", draft.reason),
            ("message id", draft.message_id),
            ("reply", draft.reply_kind),
        )
        if value
    ]
    return table(rows) + "\n\n" + draft.body


@cli.group()
def drafts() -> None:
    """Drafts awaiting approval and their states."""


@drafts.command("list")
@click.option("--state", "wanted", type=click.Choice(STATES), help="Only drafts in this state.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@json_option
@pass_state
def list_(state: CliState, wanted: DraftState | None, limit: int, as_json: bool) -> int:
    """Drafts, oldest first: id, state, recipient, subject."""
    settings, out = state.settings(), Output(as_json=as_json)

    async def work(book: DraftBook, client: QueueClient) -> int:
        found = await book.find(wanted, limit=limit)
        out.result(
            [draft.model_dump(mode="json") for draft in found],
            lambda: (
                columns(
                    ("ID", "STATE", "TO", "SUBJECT"),
                    [(d.id, d.state, d.to, d.subject) for d in found],
                )
                if found
                else "no drafts"
            ),
        )
        return EXIT_OK

    return run_async(with_book(settings, work), redis_url=settings.redis_url)


@drafts.command()
@click.argument("draft_id", metavar="ID")
@json_option
@pass_state
def show(state: CliState, draft_id: str, as_json: bool) -> int:
    """One draft in full."""
    settings, out = state.settings(), Output(as_json=as_json)

    async def work(book: DraftBook, client: QueueClient) -> int:
        draft = await book.show(draft_id)
        if draft is None:
            raise refused(draft_id, "missing", "", "show")
        out.result(draft, lambda: render_draft(draft))
        return EXIT_OK

    return run_async(with_book(settings, work), redis_url=settings.redis_url)


@cli.command()
@click.argument("draft_id", metavar="ID")
@click.option("--subject", help="Send with this subject instead.")
@click.option("--body", help="Send with this body instead.")
@json_option
@pass_state
def approve(
    state: CliState, draft_id: str, subject: str | None, body: str | None, as_json: bool
) -> int:
    """Approve draft ID (optionally edited) and queue its send."""
    settings, out = state.settings(), Output(as_json=as_json)

    async def work(book: DraftBook, client: QueueClient) -> int:
        outcome, before = await book.approve(draft_id, now_ms(), subject=subject, body=body)
        if outcome != "done":
            raise refused(draft_id, outcome, before, "approve")
        send = await queue_send(client, draft_id, send_job_id(draft_id))
        again = before == "send_failed"
        removed = await retire_send_letters(settings, client, draft_id) if again else []
        answer = ApproveAnswer(
            draft_id=draft_id,
            state=await state_now(book, draft_id),
            sent_again=again,
            dead_letters_removed=removed,
            **send.model_dump(),
        )
        out.result(answer, lambda: render_approval(answer))
        return EXIT_OK

    return run_async(with_book(settings, work), redis_url=settings.redis_url)


class ApproveAnswer(SendQueued):
    draft_id: str
    state: str  # the draft's, read back after the approval (a worker may be sending it already)
    sent_again: bool  # its last send had failed for good: this approval sends it again
    dead_letters_removed: list[str]


def render_approval(answer: ApproveAnswer) -> str:
    draft, job = answer.draft_id, answer.job_id
    if not answer.queued_now:
        return (
            f"approved {draft}; its send {job} was already queued ({answer.job_state}): "
            "nothing new queued"
        )
    head = f"approved {draft}"
    if answer.sent_again:
        head += " again: its last send had failed for good"
    line = f"{head}; send queued as {job} ({answer.job_state}); draft now {answer.state}"
    if answer.dead_letters_removed:
        line += f"; removed its old dead letter(s) {', '.join(answer.dead_letters_removed)}"
    return line


@cli.command()
@click.argument("draft_id", metavar="ID")
@click.option("--reason", required=True, help="Why (kept with the draft).")
@json_option
@pass_state
def reject(state: CliState, draft_id: str, reason: str, as_json: bool) -> int:
    """Reject draft ID: it is never sent."""
    settings, out = state.settings(), Output(as_json=as_json)

    async def work(book: DraftBook, client: QueueClient) -> int:
        outcome, before = await book.reject(draft_id, now_ms(), reason)
        if outcome != "done":
            raise refused(draft_id, outcome, before, "reject")
        out.result({"draft_id": draft_id, "state": "rejected"}, lambda: f"rejected {draft_id}")
        return EXIT_OK

    return run_async(with_book(settings, work), redis_url=settings.redis_url)


@cli.group()
def outbox() -> None:
    """Sends whose outcome a person must decide."""


@outbox.command("list")
@json_option
@pass_state
def list_outbox(state: CliState, as_json: bool) -> int:
    """Sends a person may have to look at: being sent, outcome unknown, failed for good."""
    settings, out = state.settings(), Output(as_json=as_json)

    async def work(book: DraftBook, client: QueueClient) -> int:
        found = [draft for draft in await book.find() if draft.state in OUTBOX_STATES]
        rows = [
            (d.id, d.state, d.to, OUTBOX_STATES[d.state].format(id=d.id), d.reason or "")
            for d in found
        ]
        out.result(
            [draft.model_dump(mode="json") for draft in found],
            lambda: (
                columns(("ID", "STATE", "TO", "WHAT TO DO", "REASON"), rows)
                if rows
                else "no send waits for a person"
            ),
        )
        return EXIT_OK

    return run_async(with_book(settings, work), redis_url=settings.redis_url)


@outbox.command()
@click.argument("draft_id", metavar="ID")
@click.option("--sent", is_flag=True, help="It was delivered: mark it sent.")
@click.option("--retry", is_flag=True, help="It was not delivered: send it again.")
@json_option
@pass_state
def resolve(state: CliState, draft_id: str, sent: bool, retry: bool, as_json: bool) -> int:
    """Resolve draft ID whose send is `unknown` (the worker stopped mid-send).

    The send's dead letter goes with it: a person has decided what it was waiting for.
    """
    if sent and retry:
        raise click.UsageError("--sent and --retry contradict each other: give one")
    if not sent and not retry:
        raise click.UsageError("say --sent or --retry")
    settings, out = state.settings(), Output(as_json=as_json)

    async def work(book: DraftBook, client: QueueClient) -> int:
        draft = await book.show(draft_id)
        outcome, before = await book.resolve(draft_id, now_ms(), sent=sent)
        if outcome != "done" or draft is None:
            raise refused(draft_id, outcome, before, "resolve")
        send = (
            await queue_send(client, draft_id, send_job_id(draft_id, draft.attempts))
            if retry
            else None
        )
        removed = await retire_send_letters(settings, client, draft_id)
        answer = ResolveAnswer(
            draft_id=draft_id,
            state=await state_now(book, draft_id),
            send=send,
            dead_letters_removed=removed,
        )
        out.result(answer, lambda: render_resolution(answer))
        return EXIT_OK

    return run_async(with_book(settings, work), redis_url=settings.redis_url)


class ResolveAnswer(BaseModel):
    draft_id: str
    state: str  # the draft's, read back
    send: SendQueued | None  # with --retry: the new send job, read back
    dead_letters_removed: list[str]


def render_resolution(answer: ResolveAnswer) -> str:
    line = f"{answer.draft_id}: {answer.state}"
    if answer.send is not None:
        queued = "send queued as" if answer.send.queued_now else "its send was already queued:"
        line += f"; {queued} {answer.send.job_id} ({answer.send.job_state})"
    if answer.dead_letters_removed:
        line += f"; removed its dead letter(s) {', '.join(answer.dead_letters_removed)}"
    return line
