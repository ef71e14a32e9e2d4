"""Approval, sending, suppression and replies on a real Redis, in-process burst workers and a
real SMTP server (aiosmtpd) on loopback."""

import email
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from jobs.outreach.drafts import DraftBook, DraftRecord
from jobs.outreach.outbox import Outbox
from jobs.prospecting.store import now_ms
from jobs.redisreply import reply
from settings import Settings
from tests.support.smtp_server import FaultySink
from worker.client import QueueClient
from worker.keys import WorkerKeys
from worker.local.mailsink import MailSink
from worker.registry import DAILY_JOB, REPLY_JOB, SEND_JOB, job_specs

from .conftest import drain, drain_due, make_settings

KEYS = WorkerKeys()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    with MailSink(tmp_path / "mail", FaultySink(tmp_path / "mail")) as server:
        yield server


def faults(sink: MailSink) -> FaultySink:
    assert isinstance(sink.handler, FaultySink)
    return sink.handler


def outreach_settings(redis_url: str, sink: MailSink, **overrides: Any) -> Settings:
    return make_settings(
        redis_url,
        daily_limit=overrides.pop("daily_limit", 3),
        smtp={"host": sink.host, "port": sink.port, "security": "none", "timeout_s": 5},
        outreach={
            "unsubscribe_url": "https://app.example/unsubscribe/{token}",
            "reply_to": "replies@prospect-worker-demo.example",
            **overrides.pop("outreach", {}),
        },
        **overrides,
    )


async def drafted(settings: Settings, redis: Redis) -> list[DraftRecord]:
    client = await QueueClient.connect(settings, specs=job_specs(settings))
    try:
        await client.enqueue(DAILY_JOB)
        await drain(settings)
    finally:
        await client.close()
    return await DraftBook(redis, KEYS).find()


async def enqueue(settings: Settings, name: str, payload: dict[str, Any]) -> str:
    client = await QueueClient.connect(settings, specs=job_specs(settings))
    try:
        return await client.enqueue(name, payload)
    finally:
        await client.close()


async def result_of(settings: Settings, job_id: str) -> Any:
    client = await QueueClient.connect(settings, specs=job_specs(settings))
    try:
        return await client.report(job_id)
    finally:
        await client.close()


@pytest.mark.slow
async def test_approve_reject_and_send_once_with_the_headers(
    redis_url: str, redis: Redis, sink: MailSink
) -> None:
    settings = outreach_settings(redis_url, sink)
    book = DraftBook(redis, KEYS)
    drafts = await drafted(settings, redis)
    assert [d.state for d in drafts] == ["pending"] * 3
    first, second, third = drafts

    assert await book.approve(first.id, now_ms(), subject="Edited subject") == (
        "done",
        "pending",
    )
    assert await book.reject(second.id, now_ms(), "not our market") == ("done", "pending")
    assert await book.approve(second.id, now_ms()) == ("wrong_state", "rejected")
    assert await book.approve("nope", now_ms()) == ("missing", "")
    assert [d.id for d in await book.find("rejected")] == [second.id]

    # The approved one, the rejected one, and a pending one approved by enqueueing alone.
    jobs = [
        await enqueue(settings, SEND_JOB, {"draft_id": draft.id})
        for draft in (first, second, third)
    ]
    await drain(settings)
    # Sent already: a second send job (a retry from the application, say) sends nothing.
    again = await enqueue(settings, SEND_JOB, {"draft_id": first.id})
    await drain(settings)
    results = [(await result_of(settings, job)).result for job in [*jobs, again]]
    assert [r["outcome"] for r in results] == ["sent", "not_sent", "sent", "already_sent"]
    assert results[1]["reason"] == "rejected"

    states = {d.id: d.state for d in await book.find()}
    assert states == {first.id: "sent", second.id: "rejected", third.id: "sent"}
    assert faults(sink).delivered == 2 and faults(sink).duplicates == 0

    sent = await book.show(first.id)
    assert sent is not None and sent.message_id == results[0]["message_id"]
    message = read_eml(faults(sink).directory, sent.message_id or "")
    assert message["Subject"] == "Edited subject"
    assert message["To"] == first.to
    assert message["Message-ID"] == sent.message_id
    assert message["Reply-To"] == "replies@prospect-worker-demo.example"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://app.example/unsubscribe/")
    assert "<mailto:alex@prospect-worker-demo.example?subject=unsubscribe%20" in unsubscribe
    events = [fields["type"] for _, fields in await redis.xrange(KEYS.events)]
    assert events.count("sent") == 2 and events.count("rejected") == 1
    assert await redis.get(KEYS.sent(datetime_day(settings))) == "2"


def read_eml(directory: Path, message_id: str) -> email.message.Message:
    return email.message_from_bytes((directory / f"{message_id.strip('<>')}.eml").read_bytes())


def datetime_day(settings: Settings) -> str:
    from datetime import datetime

    return datetime.now(settings.tz).date().isoformat()


async def test_a_550_fails_the_draft_and_suppresses_the_address(
    redis_url: str, redis: Redis, sink: MailSink
) -> None:
    settings = outreach_settings(redis_url, sink, daily_limit=1)
    (draft,) = await drafted(settings, redis)
    faults(sink).reject[draft.to.lower()] = "550 5.1.1 no such mailbox"
    job = await enqueue(settings, SEND_JOB, {"draft_id": draft.id})
    await drain(settings)
    report = await result_of(settings, job)
    assert report.state == "failed" and "550" in (report.error or "")
    record = await DraftBook(redis, KEYS).show(draft.id)
    assert record is not None and record.state == "failed" and "550" in (record.reason or "")
    assert await reply(redis.sismember(KEYS.suppressed_addresses, draft.to.lower()))
    letters = [f for _, f in await redis.xrange(KEYS.dead_letters)]
    assert [f["function"] for f in letters] == [SEND_JOB]
    events = [f["type"] for _, f in await redis.xrange(KEYS.events)]
    assert "bounced" in events
    assert faults(sink).delivered == 0
    # Sending the draft again changes nothing: it failed for good.
    again = await enqueue(settings, SEND_JOB, {"draft_id": draft.id})
    await drain(settings)
    assert (await result_of(settings, again)).result["outcome"] == "not_sent"


async def test_the_daily_cap_holds_and_a_deferred_reply_is_sent_once_after_backoff(
    redis_url: str, redis: Redis, sink: MailSink
) -> None:
    settings = outreach_settings(redis_url, sink, outreach={"daily_cap": 1})
    first, second, _ = await drafted(settings, redis)
    faults(sink).data_replies.extend(["421 4.3.2 shutting down", "451 4.3.0 try later"])
    sent = await enqueue(settings, SEND_JOB, {"draft_id": first.id})
    await drain(settings)
    assert (await result_of(settings, sent)).result["outcome"] == "sent"
    assert faults(sink).deferred == 2 and faults(sink).delivered == 1
    capped = await enqueue(settings, SEND_JOB, {"draft_id": second.id})
    await drain_due(settings)
    assert faults(sink).delivered == 1
    # Over the cap: deferred to local midnight without spending a try; the draft shows as
    # approved (enqueueing the send approved it), never sent, and nothing is dead-lettered.
    report = await result_of(settings, capped)
    assert report.state == "deferred" and report.progress is not None
    assert report.progress.stage == "deferred"
    assert report.progress.counters["deferred_by"] == "daily_cap"
    assert await redis.get(KEYS.tries(capped)) is None
    assert await redis.xlen(KEYS.dead_letters) == 0
    record = await DraftBook(redis, KEYS).show(second.id)
    assert record is not None and record.state == "approved"


async def test_a_send_over_the_throttle_is_deferred_before_its_claim(
    redis_url: str, redis: Redis, sink: MailSink
) -> None:
    # One job at a time, so the first enqueued is the one that takes the throttle's slot.
    settings = outreach_settings(redis_url, sink, max_jobs=1, outreach={"sends_per_minute": 1})
    first, second, _ = await drafted(settings, redis)
    sent = await enqueue(settings, SEND_JOB, {"draft_id": first.id})
    held = await enqueue(settings, SEND_JOB, {"draft_id": second.id, "subject": "Edited"})
    await drain_due(settings)
    assert (await result_of(settings, sent)).result["outcome"] == "sent"
    assert faults(sink).delivered == 1
    # The throttle's window holds the first send for a minute: the second waits, no try
    # spent, approved with its edit, and never claimed (no lease, nothing counted on the cap).
    report = await result_of(settings, held)
    assert report.state == "deferred" and report.progress is not None
    assert report.progress.counters["deferred_by"] == "rate_limit"
    assert report.progress.counters["limit"] == "smtp"
    assert await redis.get(KEYS.tries(held)) is None
    record = await DraftBook(redis, KEYS).show(second.id)
    assert record is not None and record.state == "approved" and record.subject == "Edited"
    assert record.attempts == 0
    assert await redis.zcard(KEYS.rate_window("smtp", "min")) == 1


async def test_a_send_meeting_another_tries_lease_waits_without_spending_a_try(
    redis_url: str, redis: Redis, sink: MailSink
) -> None:
    settings = outreach_settings(redis_url, sink)
    (draft, *_) = await drafted(settings, redis)
    outbox = Outbox(redis, KEYS)
    # Another try is sending it right now (its lease runs 60 s).
    another_try = uuid.uuid4().hex
    held = await outbox.claim(
        draft.id,
        token=another_try,
        now_ms=now_ms(),
        lease_ms=60_000,
        day="2026-12-02",
        cap=50,
        message_id=draft.message_id or "<m@example>",
        draft_ttl_s=3_600,
    )
    assert held.outcome == "send"
    job = await enqueue(settings, SEND_JOB, {"draft_id": draft.id})
    await drain_due(settings)
    report = await result_of(settings, job)
    assert report.state == "deferred" and report.progress is not None
    assert report.progress.counters["deferred_by"] == "send_in_progress"
    assert await redis.get(KEYS.tries(job)) is None
    assert faults(sink).delivered == 0


async def test_sending_is_off_without_an_smtp_host(redis_url: str, redis: Redis) -> None:
    settings = make_settings(redis_url, daily_limit=1)
    (draft,) = await drafted(settings, redis)
    job = await enqueue(settings, SEND_JOB, {"draft_id": draft.id})
    await drain(settings)
    report = await result_of(settings, job)
    assert report.state == "failed" and "PW_SMTP__HOST" in (report.error or "")
    record = await DraftBook(redis, KEYS).show(draft.id)
    assert record is not None and record.state == "pending"


def reply_headers(draft: DraftRecord, sender: str, subject: str = "Re: hello") -> str:
    return (
        f"From: Someone <{sender}>\r\nTo: alex@prospect-worker-demo.example\r\n"
        f"Subject: {subject}\r\nMessage-ID: <reply-{draft.id}-{subject[:4]}@mail.example>\r\n"
        f"In-Reply-To: {draft.message_id}\r\nReferences: {draft.message_id}\r\n"
    )


@pytest.mark.slow
async def test_replies_are_matched_classified_and_suppress_for_good(
    redis_url: str, redis: Redis, sink: MailSink
) -> None:
    settings = outreach_settings(redis_url, sink, daily_limit=5)
    drafts = await drafted(settings, redis)
    for draft in drafts:
        await enqueue(settings, SEND_JOB, {"draft_id": draft.id})
    await drain(settings)
    book = DraftBook(redis, KEYS)
    sent = [record for d in drafts if (record := await book.show(d.id)) is not None]
    texts = {
        "interested": ("Re: hello", "Sounds good, let's talk on Tuesday."),
        "not_interested": ("Re: hello", "Thanks, but we're not interested."),
        "out_of_office": ("Automatic reply: hello", "I am out of the office until Monday."),
        "unsubscribe": ("Re: hello", "Please unsubscribe me from this list."),
        "bounce": ("Undeliverable: hello", "The mailbox is full."),
    }
    jobs = {}
    for draft, (kind, (subject, text)) in zip(sent, texts.items(), strict=True):
        sender = draft.to if kind != "bounce" else "mailer-daemon@mail.example"
        payload = {"headers": reply_headers(draft, sender, subject), "text": text}
        jobs[kind] = (draft, await enqueue(settings, REPLY_JOB, payload))
    duplicate = await enqueue(settings, REPLY_JOB, {**payload, "text": text})
    await drain(settings)
    for kind, (draft, job) in jobs.items():
        result = (await result_of(settings, job)).result
        assert (result["kind"], result["draft_id"]) == (kind, draft.id)
        record = await book.show(draft.id)
        assert record is not None and record.reply_kind == kind
    # The same reply twice (one ran first, whichever): its effects are recorded once.
    twice = [
        (await result_of(settings, j)).result["repeat"] for j in (jobs["bounce"][1], duplicate)
    ]
    assert sorted(twice) == [False, True]
    suppressed = await reply(redis.smembers(KEYS.suppressed_addresses))
    assert suppressed == {sent[3].to.lower(), sent[4].to.lower()}
    assert await redis.ttl(KEYS.suppressed_addresses) == -1
    events = [f["type"] for _, f in await redis.xrange(KEYS.events)]
    assert events.count("replied") == 5
    assert events.count("unsubscribed") == 1 and events.count("bounced") == 1
    # A downstream service reads them with a consumer group, as docs/outreach.md shows.
    await redis.xgroup_create(KEYS.events, "crm-sync", id="0")
    batches = await redis.xreadgroup("crm-sync", "crm-sync-1", {KEYS.events: ">"}, count=1_000)
    read = [(entry_id, fields) for _, entries in batches for entry_id, fields in entries]
    assert [fields["type"] for _, fields in read] == events
    await redis.xack(KEYS.events, "crm-sync", *[entry_id for entry_id, _ in read])
    assert (await redis.xpending(KEYS.events, "crm-sync"))["pending"] == 0


@pytest.mark.slow
async def test_a_server_silent_after_data_leaves_the_send_unknown_never_retried(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    handler = FaultySink(tmp_path / "mail", hold="data")
    with MailSink(tmp_path / "mail", handler) as sink:
        settings = outreach_settings(redis_url, sink, daily_limit=1)
        settings = settings.model_copy(
            update={"smtp": settings.smtp.model_copy(update={"timeout_s": 1.0})}
        )
        (draft,) = await drafted(settings, redis)
        try:
            job = await enqueue(settings, SEND_JOB, {"draft_id": draft.id})
            await drain(settings)
        finally:
            handler.release.set()
    report = await result_of(settings, job)
    assert report.state == "failed" and "may have accepted" in (report.error or "")
    record = await DraftBook(redis, KEYS).show(draft.id)
    assert record is not None and (record.state, record.attempts) == ("unknown", 1)
    assert handler.delivered == 1
    letters = [f for _, f in await redis.xrange(KEYS.dead_letters)]
    assert "outbox resolve" in letters[0]["error"]
