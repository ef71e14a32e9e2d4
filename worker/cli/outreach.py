"""Approval and the outbox: `drafts list|show`, `approve`, `reject`, `outbox list|resolve`.

The actions are worker/ops/drafts.py and worker/ops/outbox.py (the console calls the same
ones): approving twice queues one send, a draft whose send failed for good is sent again by
approving it, `outbox resolve` answers for a send whose outcome is unknown (`--sent`, or
`--retry`: send again, which may send twice). Every answer is read back from Redis.
"""

from collections.abc import Awaitable, Callable

import click

from jobs.outreach.drafts import STATES, DraftBook, DraftRecord, DraftState
from settings import Settings
from worker.cli.acting import act
from worker.cli.base import CliState, cli, pass_state, run_async
from worker.cli.output import EXIT_OK, CliError, Output, columns, json_option, table
from worker.client import QueueClient
from worker.keys import WorkerKeys
from worker.ops import drafts as draft_ops
from worker.ops import outbox as outbox_ops
from worker.ops.actor import Actor
from worker.ops.context import Ops
from worker.ops.errors import Reason

# Drafts whose send a person may have to look at, with what to do about each.
OUTBOX_STATES: dict[DraftState, str] = {
    "sending": "being sent now",
    "unknown": "prospect-worker outbox resolve {id} --sent | --retry",
    "send_failed": "fix the cause, then prospect-worker approve {id}",
}
HINTS: dict[Reason, str] = {"not_found": "prospect-worker drafts list shows the drafts"}


async def with_book(
    settings: Settings, work: Callable[[DraftBook, QueueClient], Awaitable[int]]
) -> int:
    client = await QueueClient.connect(settings, conn_retries=0)
    try:
        return await work(DraftBook(client.redis, WorkerKeys(settings.key_prefix)), client)
    finally:
        await client.close()


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
            raise CliError(f"no draft {draft_id!r}", hint=HINTS["not_found"])
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
    """Approve draft ID (optionally edited) and queue its send.

    An edit lands only on a draft that awaits approval (pending, or its send failed for good),
    in the same step that approves it: the edited text is the text sent."""
    out = Output(as_json=as_json)

    async def work(ops: Ops, actor: Actor) -> int:
        if subject is None and body is None:
            answer = await draft_ops.approve(ops, actor, draft_id)
        else:
            answer = await draft_ops.edit_and_approve(ops, actor, draft_id, subject, body)
        out.result(answer, answer.text)
        return EXIT_OK

    return act(state, work, HINTS)


@cli.command()
@click.argument("draft_id", metavar="ID")
@click.option("--reason", required=True, help="Why (kept with the draft).")
@json_option
@pass_state
def reject(state: CliState, draft_id: str, reason: str, as_json: bool) -> int:
    """Reject draft ID: it is never sent."""
    out = Output(as_json=as_json)

    async def work(ops: Ops, actor: Actor) -> int:
        answer = await draft_ops.reject(ops, actor, draft_id, reason)
        out.result(answer, answer.text)
        return EXIT_OK

    return act(state, work, HINTS)


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
@click.option(
    "--retry",
    is_flag=True,
    help="It was not delivered: send it again (a second copy, if it was).",
)
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
    out = Output(as_json=as_json)

    async def work(ops: Ops, actor: Actor) -> int:
        answer = await outbox_ops.resolve(ops, actor, draft_id, "sent" if sent else "retry")
        if answer.warning:
            out.warn(answer.warning)
        out.result(answer, answer.text)
        return EXIT_OK

    return act(state, work, HINTS)
