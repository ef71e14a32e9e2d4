"""`outreach-demo` (`python3 dev.py run --outreach`): the pipeline all the way, offline.

A daily run drafts; a few drafts are approved (one rejected) and sent to an SMTP sink on
loopback that keeps every message as an `.eml` file; one reply of each kind comes back; then a
second daily run shows the suppression list at work. Everything runs in this process on the
Redis `run` would use (embedded unless REDIS_URL is set).
"""

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from jobs.models import Enrichment
from jobs.outreach.drafts import DraftBook
from jobs.prospecting.store import now_ms
from jobs.redisreply import reply
from settings import Settings, SmtpSettings
from worker.app import burst_worker
from worker.cli.base import CliState, cli, pass_state, run_async
from worker.cli.demo import Target, run_target
from worker.cli.output import EXIT_FAILED, EXIT_OK, Output, table
from worker.client import QueueClient
from worker.keys import WorkerKeys
from worker.local.mailsink import MailSink, clear_messages
from worker.registry import DAILY_JOB, REPLY_JOB, SEND_JOB, job_specs

REPLIES = (
    ("interested", "Re: {subject}", "Sounds interesting. Could we talk on Thursday?"),
    ("not_interested", "Re: {subject}", "Thanks, but we're not interested."),
    ("out_of_office", "Automatic reply: {subject}", "I'm out of the office until Monday."),
    ("unsubscribe", "Re: {subject}", "Please unsubscribe me."),
    ("bounce", "Undeliverable: {subject}", "The recipient's mailbox is unavailable."),
)


async def burst(target: Target, settings: Settings) -> None:
    worker = burst_worker(settings, skip_info=target.in_process, poll_delay_s=0.01)
    try:
        await worker.drain()
    finally:
        await worker.close()


async def daily(client: QueueClient, target: Target, settings: Settings, **payload: Any) -> Any:
    job_id = await client.enqueue(DAILY_JOB, payload or None)
    await burst(target, settings)
    return (await client.report(job_id)).result


async def quota_skipped_contact(client: QueueClient, keys: WorkerKeys, run_id: str) -> str | None:
    """The contact of a prospect the run found but did not draft (the quota was spent)."""
    redis = client.redis
    outcomes = await reply(redis.hgetall(keys.run_outcomes(run_id)))
    for company, outcome in sorted(outcomes.items()):
        raw = await reply(redis.hget(keys.prospect(run_id, company), "enrichment"))
        if outcome == "skipped" and raw:
            contact = Enrichment.model_validate_json(raw).contact
            if contact is not None:
                return contact.email
    return None


async def demo(target: Target, mail: MailSink, out: Output) -> int:
    settings = target.settings.model_copy(
        update={
            "daily_limit": 6,
            # A one-off worker in this process serves no metrics port (a running one may), and
            # runs only the demo's own daily runs (no catch-up of a missed tick).
            "metrics_port": 0,
            "daily_catch_up": False,
            "smtp": SmtpSettings(host=mail.host, port=mail.port, security="none"),
        }
    )
    keys = WorkerKeys(settings.key_prefix)
    client = await QueueClient.connect(settings, specs=job_specs(settings), conn_retries=0)
    book = DraftBook(client.redis, keys)
    try:
        first = await daily(client, target, settings)
        drafts = await book.find("pending")
        out.info(f"1. daily run {first['run_id']}: {len(drafts)} drafts pending approval")

        for draft in drafts[:5]:
            await book.approve(draft.id, now_ms())
            await client.enqueue(SEND_JOB, {"draft_id": draft.id}, job_id=f"send:{draft.id}")
        if len(drafts) > 5:
            await book.reject(drafts[5].id, now_ms(), "not a fit (demo)")
        await burst(target, settings)
        sent = await book.find("sent")
        out.info(f"2. approved 5, rejected 1: {len(sent)} sent to the SMTP sink")

        for draft, (kind, subject, text) in zip(sent, REPLIES, strict=False):
            sender = draft.to if kind != "bounce" else "mailer-daemon@mx.example"
            headers = (
                f"From: <{sender}>\r\nSubject: {subject.format(subject=draft.subject)}\r\n"
                f"Message-ID: <demo-{kind}@mx.example>\r\nIn-Reply-To: {draft.message_id}\r\n"
            )
            await client.enqueue(REPLY_JOB, {"headers": headers, "text": text})
        # Someone the first run found but did not draft got a forwarded copy and unsubscribed.
        bystander = await quota_skipped_contact(client, keys, first["run_id"])
        if bystander is not None:
            headers = f"From: <{bystander}>\r\nSubject: unsubscribe\r\n"
            await client.enqueue(REPLY_JOB, {"headers": headers, "text": "unsubscribe"})
        await burst(target, settings)
        replies = {d.id: d.reply_kind for d in await book.find() if d.reply_kind}
        out.info(f"3. {len(replies)} replies matched and classified; suppressed for good:")
        suppressed = sorted(await reply(client.redis.smembers(keys.suppressed_addresses)))
        for address in suppressed:
            out.info(f"     {address}")

        yesterday = (target_day(settings) - timedelta(days=1)).isoformat()
        more = settings.model_copy(update={"daily_limit": 12})
        second = await daily(client, target, more, run_date=yesterday, backfill=True)
        run = await reply(client.redis.hgetall(keys.run(second["run_id"])))
        out.info(
            f"4. second daily run ({second['run_id']}, a backfill with quota to spare): "
            f"skipped as already contacted {second['skipped'].get('already_contacted', 0)}, "
            f"as suppressed {run.get('skipped:suppressed', '0')}"
        )
        rows = [
            ("messages in the sink", mail.handler.delivered),
            ("duplicates by Message-ID", mail.handler.duplicates),
            ("drafts by state", ", ".join(f"{s} {n}" for s, n in await states(book))),
            ("replies", ", ".join(f"{k}" for k in replies.values())),
            ("suppressed addresses", len(suppressed)),
            (".eml files", str(mail.handler.directory)),
        ]
        out.result(dict(rows), lambda: table(rows))
        return EXIT_OK if mail.handler.duplicates == 0 else EXIT_FAILED
    finally:
        await client.close()


def target_day(settings: Settings) -> date:
    return datetime.now(settings.tz).date()


async def states(book: DraftBook) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for draft in await book.find():
        counts[draft.state] = counts.get(draft.state, 0) + 1
    return sorted(counts.items())


# The demos' SMTP sink directory (this one's and the console demo's).
mail_dir_option = click.option(
    "--mail-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-mail"),
    show_default=True,
    help="Where the SMTP sink keeps the messages, one .eml file each.",
)


@cli.command("outreach-demo")
@mail_dir_option
@pass_state
def outreach_demo(state: CliState, mail_dir: Path) -> int:
    """Draft, approve, send to a local SMTP sink, read replies, and suppress, end to end."""
    out = Output(as_json=False)
    cleared = clear_messages(mail_dir)
    with run_target(state.settings()) as target, MailSink(mail_dir) as mail:
        out.info(target.description)
        earlier = f" ({cleared} of an earlier run removed)" if cleared else ""
        out.info(f"SMTP sink on {mail.host}:{mail.port}, messages kept in {mail_dir}/{earlier}")
        return run_async(demo(target, mail, out), redis_url=target.settings.redis_url)
