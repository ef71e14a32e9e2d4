"""The console's read side (worker/ops: today, lookup, listings, charts) on a real Redis, with a
real daily run through an in-process worker where the figures come from one."""

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from jobs.outreach.classify import Classification, ReplyFacts
from jobs.outreach.drafts import DraftBook
from jobs.outreach.outbox import Outbox
from jobs.outreach.replies_log import ReplyLog
from jobs.outreach.suppression import Suppressions
from jobs.prospecting.store import now_ms
from jobs.redisreply import reply
from settings import Settings
from worker.observability.minute_counts import Tally, queue_tally
from worker.observability.replicas import publish
from worker.ops import listings
from worker.ops.charts import series
from worker.ops.context import Ops, open_ops
from worker.ops.errors import Refused
from worker.ops.listings import (
    dead_letter,
    dead_letters_page,
    drafts_page,
    outbox,
    suppression_page,
)
from worker.ops.lookup import in_flight, job_detail
from worker.ops.today import today
from worker.registry import DAILY_JOB, PROSPECT_JOB
from worker.runtime.deadletter import DeadLetters
from worker.runtime.progress import JobProgress
from worker.scheduling.limits import TypeLeases

from .conftest import drain, make_settings


@pytest.fixture
async def ops(settings: Settings) -> AsyncIterator[Ops]:
    async with open_ops(settings) as opened:
        yield opened


def claim_token(draft_id: str) -> str:
    return "t-" + draft_id


SEND: dict[str, Any] = {
    "now_ms": 0,
    "lease_ms": 60_000,
    "day": "2026-12-04",
    "cap": 10,
    "message_id": "<m@test.example>",
    "draft_ttl_s": 3600,
}


async def claim(redis: Redis, ops: Ops, draft_id: str, *, lease_ms: int = 60_000) -> Outbox:
    box = Outbox(redis, ops.keys)
    given = {"now_ms": now_ms(), "lease_ms": lease_ms, "token": claim_token(draft_id)}
    outcome = await box.claim(draft_id, **{**SEND, **given})
    assert outcome.outcome == "send"
    return box


async def test_today_follows_a_real_run_from_discovery_to_replies(redis_url: str) -> None:
    settings = make_settings(redis_url, daily_limit=3)
    async with open_ops(settings) as ops:
        job_id = await ops.client.enqueue(DAILY_JOB)
        await drain(settings)
        redis = ops.redis
        pending = await drafts_page(ops, "pending")
        assert len(pending.items) == 3 and pending.next_cursor is None and pending.total is None
        first, second = pending.items[0].draft.id, pending.items[1].draft.id
        # One approved, one of those sent, and a reply to it: the funnel's last three stages.
        assert (await DraftBook(redis, ops.keys).approve(first, now_ms()))[0] == "done"
        box = await claim(redis, ops, first)
        assert await box.finish(
            first, token=claim_token(first), to="sent", now_ms=now_ms(), day="x"
        )
        facts = ReplyFacts(sender="a@b.example", subject="Re", text="yes")
        found = Classification(kind="interested", reason="yes", classifier="test")
        assert await ReplyLog(redis, ops.keys).record("r1", first, facts, found)
        assert (await DraftBook(redis, ops.keys).approve(second, now_ms()))[0] == "done"

        view = await today(ops)
        run = view.run
        assert run is not None and run.stage == "complete" and run.error is None
        assert run.done == run.total > 0 and run.failed == 0
        assert run.rate_per_s is not None and run.rate_per_s > 0
        funnel = run.funnel
        assert (funnel.queued, funnel.approved, funnel.sent, funnel.replied) == (3, 2, 1, 1)
        assert funnel.discovered >= funnel.fanned_out >= funnel.drafted >= funnel.queued
        assert view.stats.due == 0 and view.stats.dead_letters == 0 and view.unknown_sends == 0

        # The worker's per-minute counts, published at its shutdown, chart the run.
        charts = await series(ops, hours=2)
        by_type = {line.job_type: line for line in charts.types}
        assert sum(by_type[PROSPECT_JOB].done) == run.total
        assert sum(by_type[DAILY_JOB].done) == 1 and sum(by_type[DAILY_JOB].failed) == 0
        assert by_type[PROSPECT_JOB].mean_s[-1] is not None

        detail = await job_detail(ops, job_id)
        assert (detail.state, detail.function, detail.failed_tries) == ("complete", DAILY_JOB, 0)
        assert detail.result["run_id"] == run.run_id and detail.dead_letter_id is None

        # The reviewer's page: oldest first, one at a time by cursor, with the evidence.
        seen, cursor = [], None
        while True:
            page = await drafts_page(ops, cursor=cursor, limit=1)
            seen += [item.draft.id for item in page.items]
            assert page.total == 3
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == [item.draft.id for item in pending.items]
        item = pending.items[2]
        assert item.company is not None and item.company.id == item.draft.id
        assert item.score is not None and item.score.total == item.draft.score
        assert {factor.name for factor in item.score.factors} >= {"industry", "size"}
        assert item.enrichment is not None and item.enrichment.contact is not None
        assert item.email.headers["To"] == item.draft.to
        assert item.email.headers["Subject"] == item.draft.subject
        assert "List-Unsubscribe" in item.email.headers and item.email.body == item.draft.body
        approved = await drafts_page(ops, "approved")
        assert [i.draft.id for i in approved.items] == [second]
        assert [i.draft.state for i in (await drafts_page(ops, "sent")).items] == ["sent"]


async def test_today_shows_the_queue_pause_workers_dead_letters_and_unknown_sends(
    ops: Ops, redis: Redis
) -> None:
    await ops.client.enqueue("cleanup")
    await ops.client.enqueue("cleanup", priority="reply")
    await ops.client.enqueue("cleanup", defer_s=600)
    await reply(redis.hset(ops.keys.paused, "send_outreach", "1"))
    letters = DeadLetters(redis, ops.keys, queue_name="arq:queue", job_expires_ms=60_000)
    await letters.add(
        job_id="j1", function="cleanup", kind="failed", error_type="E", error="e", tries=3
    )
    tally = Tally()
    tally.add("cleanup", "succeeded", 0.5)
    await publish(
        redis,
        ops.keys,
        replica="host-a:1",
        in_flight={"cleanup": 2},
        outcomes=tally,
        now_s=time.time(),
        ttl_s=30,
    )
    for draft_id in ("c1", "c2"):
        await reply(
            redis.hset(
                ops.keys.draft(draft_id),
                mapping={"state": "approved", "to": "x@y.example", "subject": "s", "body": "b"},
            )
        )
    # Unknown both ways: the SMTP outcome was lost, or a try died mid-send (its lease lapsed).
    box = await claim(redis, ops, "c1")
    await box.finish(
        "c1", token=claim_token("c1"), to="unknown", now_ms=now_ms(), day="x", reason="why"
    )
    await claim(redis, ops, "c2", lease_ms=-1)
    lapsed = await box.claim("c2", **{**SEND, "now_ms": now_ms(), "token": claim_token("x")})
    assert lapsed.outcome == "lapsed"

    view = await today(ops)
    assert view.run is None
    stats = view.stats
    assert (stats.due, stats.scheduled, stats.depth_exact) == (2, 1, True)
    cleanup = {(d.priority, d.due, d.scheduled) for d in stats.depth if d.job_type == "cleanup"}
    assert ("reply", 1, 0) in cleanup
    assert stats.paused is False and stats.paused_types == ["send_outreach"]
    assert [w.replica for w in stats.replicas] == ["host-a:1"]
    assert stats.replicas[0].seen_ts > 0 and stats.in_flight == {"cleanup": 2}
    assert stats.dead_letters == 1 and view.unknown_sends == 2
    assert stats.outcomes_last_hour == {"cleanup": {"succeeded": 1}}

    first, second = await outbox(ops)
    assert (first.draft.id, first.draft.reason, second.draft.id) == ("c1", "why", "c2")
    # Decided by a person: it leaves the index in the same step.
    book = DraftBook(redis, ops.keys)
    assert (await book.resolve("c1", now_ms(), sent=True))[0] == "done"
    assert (await book.resolve("c2", now_ms(), sent=False))[0] == "done"
    assert await outbox(ops) == [] and (await today(ops)).unknown_sends == 0


async def fill_letters(redis: Redis, ops: Ops, count: int) -> list[str]:
    letters = DeadLetters(redis, ops.keys, queue_name="arq:queue", job_expires_ms=60_000)
    return [
        await letters.add(
            job_id=f"job-{i}",
            function=("cleanup", "send_outreach")[i % 2],
            kind="failed",
            error_type=("PermanentError", "TimeoutError", "ValueError")[i % 3],
            error=f"error {i}",
            tries=1 + i % 3,
            payload={"n": i},
        )
        for i in range(count)
    ]


async def test_dead_letters_page_newest_first_by_cursor_and_filter(
    ops: Ops, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await fill_letters(redis, ops, 30)

    async def every(limit: int, **filters: Any) -> list[str]:
        seen, cursor, notes = [], None, 0
        while True:
            page = await dead_letters_page(ops, cursor=cursor, limit=limit, **filters)
            seen += [letter.id for letter in page.items]
            notes += page.note is not None
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor

    assert await every(7) == ids[::-1]
    first = await dead_letters_page(ops, limit=7)
    assert first.total == 30 and first.note is None
    sends = [entry for i, entry in enumerate(ids) if i % 2 == 1]
    assert await every(4, job_type="send_outreach") == sends[::-1]
    both = [entry for i, entry in enumerate(ids) if i % 2 == 1 and i % 3 == 2]
    assert await every(2, job_type="send_outreach", error_type="ValueError") == both[::-1]
    assert (await dead_letters_page(ops, error_type="KeyError")).items == []

    # A filter looks at a bounded window per page, says so, and goes on from where it stopped.
    monkeypatch.setattr(listings, "DEAD_LETTER_WINDOW", 4)
    monkeypatch.setattr(listings, "DEAD_LETTER_STEP", 3)
    page = await dead_letters_page(ops, job_type="cleanup", error_type="ValueError")
    assert page.note is not None and "looked at 4 entries" in page.note
    assert page.total is None and page.next_cursor == ids[-4]
    assert (
        await every(10, job_type="cleanup", error_type="ValueError")
        == [entry for i, entry in enumerate(ids) if i % 2 == 0 and i % 3 == 2][::-1]
    )

    shown = await dead_letter(ops, ids[4])
    assert shown is not None
    assert (shown.job_id, shown.error_type, shown.tries, shown.payload) == (
        "job-4",
        "TimeoutError",
        2,
        {"n": 4},
    )
    assert shown.replay_refused is None
    assert await dead_letter(ops, "1-1") is None
    with pytest.raises(Refused):
        await dead_letters_page(ops, cursor="+ or anything")
    with pytest.raises(Refused):
        await dead_letters_page(ops, limit=0)


async def test_in_flight_lists_the_live_leases_with_their_progress(ops: Ops, redis: Redis) -> None:
    leases = TypeLeases(redis, ops.keys, lease_s=30)
    await leases.take("cleanup", "c-1", 5)
    await JobProgress(redis, ops.keys, "c-1", 1).update("trimming", done=1, total=3)
    lapsed = TypeLeases(redis, ops.keys, lease_s=30, clock=lambda: time.time() - 60)
    await lapsed.take("send_outreach", "s-1", 5)  # a dead worker's lease, lapsed a while ago
    (job,) = await in_flight(ops)
    assert (job.job_id, job.job_type) == ("c-1", "cleanup")
    assert job.progress is not None and (job.progress.stage, job.progress.done) == ("trimming", 1)
    assert job.lease_until.timestamp() > time.time()
    missing = await job_detail(ops, "no-such-job")
    assert (missing.state, missing.payload, missing.failed_tries) == ("not_found", None, 0)


async def test_suppression_pages_cover_every_address_once_with_why_and_when(
    ops: Ops, redis: Redis
) -> None:
    book = Suppressions(redis, ops.keys)
    before = now_ms()
    for i in range(25):
        await book.add(f"person{i}@example.org", reason="unsubscribe", now_ms=before + i)
    seen, cursor = [], None
    while True:
        page = await suppression_page(ops, cursor=cursor, limit=10)
        assert page.total == 25
        seen += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(item.address for item in seen) == sorted(
        f"person{i}@example.org" for i in range(25)
    )
    assert {item.reason for item in seen} == {"unsubscribe"}
    assert all(item.since is not None and item.since.timestamp() * 1000 >= before for item in seen)


async def test_series_gives_each_hour_by_type_with_the_mean_processing_time(
    ops: Ops, redis: Redis
) -> None:
    now = 1_800_000_000.0 + 30 * 60  # half past an hour
    written = [(now, "succeeded", 2.0), (now - 60, "failed", None), (now - 3600, "succeeded", 4.0)]
    for at, kind, duration in written:
        tally = Tally()
        tally.add("cleanup", kind, duration)  # type: ignore[arg-type]
        tally.add("cleanup", "retried", 1.0)
        async with redis.pipeline(transaction=False) as pipe:
            queue_tally(pipe, ops.keys, tally, now_s=at)
            await pipe.execute()
    charts = await series(ops, hours=3, now_s=now)
    assert [hour.timestamp() for hour in charts.hours] == [
        1_800_000_000 - 7200,
        1_800_000_000 - 3600,
        1_800_000_000,
    ]
    (line,) = charts.types
    assert (line.done, line.failed, line.retried) == ([0, 1, 1], [0, 0, 1], [0, 1, 2])
    assert line.mean_s == [None, 2.5, 1.333]  # (2 + 1 + 1) / 3: the failed try never ran
    with pytest.raises(Refused):
        await series(ops, hours=100)
