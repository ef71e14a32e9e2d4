"""Approval and the outbox: `drafts list|show`, `approve`, `reject`, `outbox resolve`.

`approve` marks the draft approved and enqueues its `send_outreach` job (job id
`send:<draft id>`, so approving twice queues one send). `outbox resolve` answers for a send whose
outcome is unknown: `--sent` (it was delivered) or `--retry` (it was not: send again).
"""

import time
from collections.abc import Awaitable, Callable

import click

from jobs.outreach.drafts import STATES, DraftBook, DraftRecord, DraftState, Transition
from settings import Settings
from worker.cli.base import CliState, cli, pass_state, run_async
from worker.cli.output import EXIT_OK, CliError, Output, json_option, table
from worker.client import QueueClient
from worker.keys import WorkerKeys
from worker.registry import SEND_JOB, job_specs


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
@json_option
@pass_state
def list_(state: CliState, wanted: DraftState | None, as_json: bool) -> int:
    """Drafts, oldest first: id, state, recipient, subject."""
    settings, out = state.settings(), Output(as_json=as_json)

    async def work(book: DraftBook, client: QueueClient) -> int:
        found = await book.find(wanted)
        out.result(
            [draft.model_dump(mode="json") for draft in found],
            lambda: (
                "\n".join(f"{d.id}  {d.state:<9} {d.to}  {d.subject}" for d in found) or "no drafts"
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
        job_id = await client.enqueue(
            SEND_JOB, {"draft_id": draft_id}, job_id=send_job_id(draft_id)
        )
        out.result(
            {"draft_id": draft_id, "state": "approved", "job_id": job_id},
            lambda: f"approved {draft_id}; send queued as {job_id}",
        )
        return EXIT_OK

    return run_async(with_book(settings, work), redis_url=settings.redis_url)


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


@outbox.command()
@click.argument("draft_id", metavar="ID")
@click.option("--sent", "decision", flag_value="sent", help="It was delivered: mark it sent.")
@click.option(
    "--retry", "decision", flag_value="retry", help="It was not delivered: send it again."
)
@json_option
@pass_state
def resolve(state: CliState, draft_id: str, decision: str | None, as_json: bool) -> int:
    """Resolve draft ID whose send is `unknown` (the worker stopped mid-send)."""
    if decision is None:
        raise click.UsageError("say --sent or --retry")
    settings, out = state.settings(), Output(as_json=as_json)

    async def work(book: DraftBook, client: QueueClient) -> int:
        draft = await book.show(draft_id)
        outcome, before = await book.resolve(draft_id, now_ms(), sent=decision == "sent")
        if outcome != "done" or draft is None:
            raise refused(draft_id, outcome, before, "resolve")
        result: dict[str, object] = {"draft_id": draft_id, "state": "sent"}
        if decision == "retry":
            job_id = await client.enqueue(
                SEND_JOB, {"draft_id": draft_id}, job_id=send_job_id(draft_id, draft.attempts)
            )
            result = {"draft_id": draft_id, "state": "approved", "job_id": job_id}
        out.result(result, lambda: f"{draft_id}: {result['state']}")
        return EXIT_OK

    return run_async(with_book(settings, work), redis_url=settings.redis_url)
