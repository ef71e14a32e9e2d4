"""Sending's fault tests on real processes: `arq worker.WorkerSettings` workers, the real CLI,
and a real SMTP server (aiosmtpd) that counts every message by Message-ID.

Each test reports its figures, printed together at the end of the run ("figures"): sent
(drafts the outbox holds as sent), delivered (messages the server received), duplicates by
Message-ID, unknown.
"""

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.constants import default_queue_name
from redis.asyncio import Redis

from jobs.models import Draft, Enrichment
from jobs.outreach.drafts import DraftBook, DraftRecord
from jobs.prospecting.store import ProspectStore, now_ms
from jobs.redisreply import reply
from settings import Settings
from tests.conftest import Figures
from tests.support.cli import cli_in_process
from tests.support.far_end import max_in_window
from tests.support.fault_env import marker_env, retry_env
from tests.support.processes import WorkerProcess, env_for
from tests.support.runs import open_run
from tests.support.smtp_server import FaultySink, HoldPoint, faulty_sink, smtp_env
from tests.support.until import until
from worker.keys import WorkerKeys
from worker.local.mailsink import MailSink

KEYS = WorkerKeys()
FAST = {
    **retry_env(max_tries=8, base_delay_s=0.2, max_delay_s=1),
    # A killed worker's job runs again within seconds, and its send lease lapses soon after.
    **marker_env(ttl_s=3, renew_s=1),
    "PW_JOBS__SEND_OUTREACH__TIMEOUT_S": "4",
    "PW_OUTREACH__SEND_LEASE_S": "6",
}


def handler(sink: MailSink) -> FaultySink:
    assert isinstance(sink.handler, FaultySink)
    return sink.handler


async def queue_drafts(redis: Redis, *addresses: str) -> list[str]:
    """Drafts as the daily run queues them (the same script), one per address."""
    store = ProspectStore(redis, KEYS)
    ids = [f"t{number}-{address.split('@')[0]}" for number, address in enumerate(addresses, 1)]
    await open_run(redis, "test", *ids)
    for number, (address, draft_id) in enumerate(zip(addresses, ids, strict=True), 1):
        draft = Draft(to=address, subject=f"Hello {number}", body="Hi there.", writer="template")
        outcome, _ = await store.queue_draft(
            run_id="test", company_id=draft_id, draft=draft, score=80, day="test", limit=1_000
        )
        assert outcome == "queued"
    return ids


async def settled(book: DraftBook, draft_id: str, *states: str) -> DraftRecord:
    async def check() -> DraftRecord | None:
        record = await book.show(draft_id)
        return record if record is not None and record.state in states else None

    found: DraftRecord = await until(check)
    return found


@pytest.fixture
def sink_dir(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("point", ["rcpt", "data", "quit"])
async def test_sigkill_around_each_step_of_the_send_delivers_at_most_once(
    redis_url: str, redis: Redis, tmp_path: Path, point: HoldPoint, figures: Figures
) -> None:
    book = DraftBook(redis, KEYS)
    with faulty_sink(tmp_path / "mail", hold=point) as sink:
        env = env_for(redis_url, **smtp_env(sink), **FAST)
        (draft_id,) = await queue_drafts(redis, "pat@acme.example")
        with WorkerProcess(env, tmp_path / "worker.log") as worker:
            worker.wait_ready()
            approved = cli_in_process(env, "approve", draft_id)
            assert approved.returncode == 0, approved.stderr
            # The worker is in the middle of the transaction, held at `point`: kill it there.
            assert await asyncio.to_thread(handler(sink).held.wait, 30)
            worker.kill()
            handler(sink).release.set()
            worker.start()
            worker.wait_ready()
            record = await settled(book, draft_id, "sent", "unknown", "failed")
            # The draft turns unknown in the claim; the runtime's dead letter follows it.
            await until(lambda: redis.xlen(KEYS.dead_letters))
            letters = [f for _, f in await redis.xrange(KEYS.dead_letters)]
            delivered = handler(sink).received[record.message_id or ""]
            # A person looks: delivered (the server has it) -> --sent; else --retry.
            decision = "--sent" if delivered else "--retry"
            resolved = cli_in_process(env, "outbox", "resolve", draft_id, decision)
            final = await settled(book, draft_id, "sent")
            code, output = worker.stop()
        assert code == 0, output
    total = handler(sink).received[final.message_id or ""]
    figures(
        f"sigkill at {point}",
        state_after_restart=record.state,
        delivered_before_resolve=delivered,
        sent=1 if final.state == "sent" else 0,
        delivered=total,
        duplicates=handler(sink).duplicates,
        unknown=int(record.state == "unknown"),
        smtp_transactions=final.attempts,
        resolved_with=decision,
    )
    # The rerun found the lapsed lease and never sent on its own: unknown, for a person.
    assert record.state == "unknown"
    assert delivered == (0 if point == "rcpt" else 1)
    assert [letter["function"] for letter in letters] == ["send_outreach"]
    assert "may or may not have been delivered" in letters[0]["error"]
    assert resolved.returncode == 0, resolved.stderr
    assert total == 1 and handler(sink).duplicates == 0


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_421_451_then_accepted_is_sent_once_and_550_is_dead_lettered_and_suppressed(
    redis_url: str, redis: Redis, tmp_path: Path, figures: Figures
) -> None:
    book = DraftBook(redis, KEYS)
    replies = ["421 4.3.2 service not available", "451 4.3.0 try again later"]
    reject = {"gone@acme.example": "550 5.1.1 no such user"}
    with faulty_sink(tmp_path / "mail", data_replies=replies, reject=reject) as sink:
        env = env_for(redis_url, **smtp_env(sink), **FAST)
        good, gone = await queue_drafts(redis, "pat@acme.example", "gone@acme.example")
        with WorkerProcess(env, tmp_path / "worker.log") as worker:
            worker.wait_ready()
            started = time.monotonic()
            assert cli_in_process(env, "approve", good).returncode == 0
            sent = await settled(book, good, "sent")
            took = time.monotonic() - started
            assert cli_in_process(env, "approve", gone).returncode == 0
            failed = await settled(book, gone, "failed")
            await until(lambda: redis.xlen(KEYS.dead_letters))
            code, output = worker.stop()
        assert code == 0, output
    letters = [f for _, f in await redis.xrange(KEYS.dead_letters)]
    suppressed = await reply(redis.smembers(KEYS.suppressed_addresses))
    figures(
        "smtp 421/451 then 250; 550",
        deferred=handler(sink).deferred,
        sent=1,
        delivered=handler(sink).delivered,
        duplicates=handler(sink).duplicates,
        unknown=0,
        seconds_to_sent=round(took, 2),
        dead_lettered=len(letters),
        suppressed=sorted(suppressed),
    )
    assert handler(sink).deferred == 2 and sent.attempts == 3
    assert handler(sink).received[sent.message_id or ""] == 1
    assert handler(sink).delivered == 1 and handler(sink).duplicates == 0
    assert failed.reason is not None and "550" in failed.reason
    assert [letter["function"] for letter in letters] == ["send_outreach"]
    assert suppressed == {"gone@acme.example"}


async def enqueue_plain(
    redis_url: str, name: str, payload: dict[str, Any], *, defer_s: float | None = None
) -> None:
    """As any arq client would (JSON, arq's default queue)."""
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )
    try:
        assert await pool.enqueue_job(name, payload, _defer_by=defer_s) is not None
    finally:
        await pool.aclose()


async def enqueue_daily(redis_url: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )
    try:
        job = await pool.enqueue_job("daily_prospect_queue", *([payload] if payload else []))
        assert job is not None
        result: dict[str, Any] = await job.result(timeout=120, poll_delay=0.05)
    finally:
        await pool.aclose()
    return result


async def run_done(redis: Redis, run_id: str) -> dict[str, str]:
    async def check() -> dict[str, str] | None:
        run = await reply(redis.hgetall(KEYS.run(run_id)))
        return run if run.get("finished_ms") else None

    found: dict[str, str] = await until(check, 120)
    return found


async def skipped_contact(redis: Redis, run_id: str) -> tuple[str, str]:
    """A company the run skipped at the quota whose contact it found: the next run picks it."""
    outcomes = await reply(redis.hgetall(KEYS.run_outcomes(run_id)))
    for company_id, outcome in sorted(outcomes.items()):
        raw = await reply(redis.hget(KEYS.prospect(run_id, company_id), "enrichment"))
        if outcome == "skipped" and raw:
            contact = Enrichment.model_validate_json(raw).contact
            decided = await reply(redis.hget(KEYS.prospect(run_id, company_id), "queue_outcome"))
            if contact is not None and decided in (None, "quota_reached"):
                return company_id, contact.email
    raise AssertionError("no skipped prospect with a contact")


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    with faulty_sink(tmp_path / "mail") as server:
        yield server


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_an_unsubscribe_reply_is_for_good(
    redis_url: str, redis: Redis, tmp_path: Path, sink: MailSink, figures: Figures
) -> None:
    book = DraftBook(redis, KEYS)
    base = env_for(redis_url, **smtp_env(sink), **FAST, PW_FANOUT_HEADROOM="4")
    with WorkerProcess({**base, "PW_DAILY_LIMIT": "1"}, tmp_path / "worker.log") as worker:
        worker.wait_ready()
        first = await enqueue_daily(redis_url)
        await run_done(redis, first["run_id"])
        company, address = await skipped_contact(redis, first["run_id"])
        # The same person reached through two other drafts (a referral, say): one is sent and
        # answered "unsubscribe"; the other was approved before that reply, to go out later.
        answered, later = await queue_drafts(redis, address, address)
        assert cli_in_process(base, "approve", answered).returncode == 0
        sent = await settled(book, answered, "sent")
        await book.approve(later, now_ms())
        # An application approves it by enqueueing its send for a bit later (a send window);
        # the reply arrives meanwhile. (Replies first whatever the queue holds is the
        # scheduling work's priority classes.)
        await enqueue_plain(redis_url, "send_outreach", {"draft_id": later}, defer_s=5)
        headers = (
            f"From: <{address}>\r\nSubject: Re: {sent.subject}\r\n"
            f"Message-ID: <r1@mail.example>\r\nIn-Reply-To: {sent.message_id}\r\n"
        )
        reply_payload = {"headers": headers, "text": "Please unsubscribe me."}
        await enqueue_plain(redis_url, "process_reply", reply_payload)
        not_sent = await settled(book, later, "failed", "sent")
        # The next daily run (another day's run id), with quota to spare: the contact's
        # company comes up again and is skipped as suppressed.
        worker.restart({**base, "PW_DAILY_LIMIT": "6"})
        worker.wait_ready()
        # The worker's yesterday (its default time zone), not this machine's: in the hours
        # where the two dates differ, the machine's yesterday is the first run's own day.
        worker_today = datetime.now(Settings.model_construct().tz).date()
        yesterday = (worker_today - timedelta(days=1)).isoformat()
        second = await enqueue_daily(redis_url, {"run_date": yesterday, "backfill": True})
        run = await run_done(redis, second["run_id"])
        code, output = worker.stop()
    assert code == 0, output
    second_outcome = await reply(redis.hget(KEYS.run_outcomes(second["run_id"]), company))
    to_address = [f["to"] for _, f in await redis.xrange(KEYS.approvals) if f["to"] == address]
    figures(
        "unsubscribe",
        sent=1,
        delivered=handler(sink).recipients[address],
        duplicates=handler(sink).duplicates,
        unknown=0,
        approved_later_state=not_sent.state,
        second_run_skipped_suppressed=run.get("skipped:suppressed", "0"),
    )
    assert handler(sink).recipients[address] == 1 and handler(sink).duplicates == 0
    assert (not_sent.state, not_sent.reason) == ("failed", "suppressed")
    assert second["run_id"] != first["run_id"]
    assert second_outcome == "skipped" and int(run.get("skipped:suppressed", "0")) >= 1
    assert len(to_address) == 2  # only the two drafts made above; the run queued none


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_the_throttle_and_the_daily_cap_hold_across_two_workers(
    redis_url: str, redis: Redis, tmp_path: Path, sink: MailSink, figures: Figures
) -> None:
    """30 approved drafts, 6 sends a second, a cap of 9, two workers: the server never sees
    more than 6 in any 1 s window, 9 go out, and the other 21 wait for tomorrow (deferred to
    local midnight, no try spent, nothing dead-lettered). The cap lies inside the second
    window: the throttle holds a full window back and the cap stops a window part-used. (The
    per-minute throttle is the same limiter with a longer window.)"""
    throttle, cap, approved = 6, 9, 30
    book = DraftBook(redis, KEYS)
    env = env_for(
        redis_url,
        **smtp_env(sink),
        **FAST,
        PW_OUTREACH__DAILY_CAP=str(cap),
        PW_OUTREACH__SENDS_PER_SECOND=str(throttle),
    )
    ids = await queue_drafts(redis, *(f"p{n}@firm{n}.example" for n in range(approved)))
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )
    with (
        WorkerProcess(env, tmp_path / "one.log") as one,
        WorkerProcess(env, tmp_path / "two.log") as two,
    ):
        one.wait_ready()
        two.wait_ready()
        began = time.monotonic()
        jobs = []
        for draft_id in ids:  # approved by enqueueing, as an application does
            job = await pool.enqueue_job("send_outreach", {"draft_id": draft_id})
            assert job is not None
            jobs.append(job.job_id)
        await pool.aclose()

        async def cap_reached_and_rest_waiting() -> bool:
            # The rest are scheduled for midnight: nothing is due within the next minute.
            soon = int((time.time() + 60) * 1000)
            sent = len(await book.find("sent"))
            return sent >= cap and await redis.zcount(default_queue_name, "-inf", soon) == 0

        await until(cap_reached_and_rest_waiting, 60)
        took_s = time.monotonic() - began
        codes = [one.stop()[0], two.stop()[0]]
    sent = await book.find("sent")
    waiting = await book.find("approved")
    arrivals = handler(sink).arrivals
    busiest = max_in_window(arrivals, 1.0)
    tries_spent = sum([int(await redis.get(KEYS.tries(job_id)) or 0) for job_id in jobs])
    # The worker's day: the default time zone (no PW_TIMEZONE in its environment).
    day = datetime.now(Settings.model_construct().tz).date().isoformat()
    figures(
        "throttle and daily cap, two workers",
        approved=approved,
        throttle_per_s=throttle,
        cap=cap,
        sent=len(sent),
        delivered=handler(sink).delivered,
        duplicates=handler(sink).duplicates,
        unknown=len(await book.find("unknown")),
        max_per_1s_window=busiest,
        waiting_for_tomorrow=len(waiting),
        tries_spent=tries_spent,
        dead_letters=await redis.xlen(KEYS.dead_letters),
        took_s=round(took_s, 1),
    )
    assert codes == [0, 0]
    assert len(sent) == handler(sink).delivered == cap and handler(sink).duplicates == 0
    assert busiest <= throttle
    assert len(waiting) == approved - cap
    assert tries_spent == 0 and await redis.xlen(KEYS.dead_letters) == 0
    assert await redis.get(KEYS.sent(day)) == str(cap)
