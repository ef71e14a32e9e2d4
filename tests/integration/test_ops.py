"""The operations both doors call (worker/ops), against a real Redis: each checks the actor's
role, refuses bad input with nothing changed, answers with what Redis holds after it, and writes
exactly one audit entry, refusals included."""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from jobs.redisreply import reply
from settings import Settings
from tests.integration.conftest import drain, make_settings
from tests.integration.test_cli_dlq import two_dead_letters
from tests.integration.test_outreach import outreach_settings
from tests.support.runs import queued_drafts
from worker.keys import WorkerKeys
from worker.local.mailsink import MailSink
from worker.ops import controls, dead_letters, drafts, outbox, sends, suppression
from worker.ops.actor import Actor, Role
from worker.ops.audit import AuditEntry, AuditLog
from worker.ops.context import Ops, open_ops
from worker.ops.errors import Refused

KEYS = WorkerKeys()


def person(role: Role, name: str = "ada") -> Actor:
    return Actor(name=name, role=role, door="console", source="192.0.2.7")


OPERATOR, APPROVER, VIEWER = person("operator"), person("approver", "bo"), person("viewer", "cy")


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


@pytest.fixture
async def ops(settings: Settings) -> AsyncIterator[Ops]:
    async with open_ops(settings) as opened:
        yield opened


async def seed(redis: Redis, count: int = 1) -> list[str]:
    """Pending drafts as the daily run queues them: ids d1, d2, ..."""
    return await queued_drafts(redis, count, keys=KEYS)


async def audit(ops: Ops) -> list[AuditEntry]:
    return await AuditLog(ops.redis, ops.keys).page(100)


async def field(redis: Redis, draft_id: str, name: str) -> str | None:
    return await reply(redis.hget(KEYS.draft(draft_id), name))


async def test_a_viewer_is_refused_and_the_refusal_is_audited(ops: Ops, redis: Redis) -> None:
    (draft_id,) = await seed(redis)
    with pytest.raises(Refused, match="cy is a viewer and may not approve") as refused:
        await drafts.approve(ops, VIEWER, draft_id)
    assert refused.value.reason == "forbidden"
    for action in (
        dead_letters.purge(ops, VIEWER, None),
        controls.pause(ops, VIEWER, None),
        suppression.suppress(ops, VIEWER, "x@y.example", "asked"),
        outbox.resolve(ops, VIEWER, draft_id, "sent"),
    ):
        with pytest.raises(Refused) as refused:
            await action
        assert refused.value.reason == "forbidden"
    # An approver works the drafts and the suppression list, and nothing else.
    with pytest.raises(Refused, match="bo is an approver and may not operate the queue"):
        await controls.pause(ops, APPROVER, None)
    assert await field(redis, draft_id, "state") == "pending"
    assert await redis.exists(KEYS.paused) == 0
    entries = await audit(ops)
    assert len(entries) == 6
    assert all(e.outcome.startswith("refused (forbidden): ") for e in entries)
    newest = entries[0]
    assert (newest.actor, newest.role, newest.door, newest.source, newest.action) == (
        "bo",
        "approver",
        "console",
        "192.0.2.7",
        "pause",
    )
    assert (entries[-1].action, entries[-1].target) == ("approve", f"draft {draft_id}")


async def test_approving_twice_queues_one_send(ops: Ops, redis: Redis) -> None:
    (draft_id,) = await seed(redis)
    first = await drafts.approve(ops, APPROVER, draft_id)
    second = await drafts.approve(ops, OPERATOR, draft_id)
    assert (first.job_id, first.queued_now, first.state) == (f"send:{draft_id}", True, "approved")
    assert (second.job_id, second.queued_now, second.job_state) == (
        f"send:{draft_id}",
        False,
        "queued",
    )
    assert "already queued" in second.text()
    assert await redis.zcard("arq:queue") == 1
    entries = await audit(ops)
    assert [(e.actor, e.action, e.outcome) for e in entries] == [
        ("ada", "approve", second.text()),
        ("bo", "approve", first.text()),
    ]


async def test_an_edit_is_kept_and_lands_only_before_approval(ops: Ops, redis: Redis) -> None:
    first, second = await seed(redis, 2)
    answer = await drafts.edit_and_approve(ops, APPROVER, first, "Better subject", "New body.")
    assert (answer.edited, answer.state, answer.queued_now) == (True, "approved", True)
    assert answer.text().startswith(f"edited and approved {first}")
    assert await field(redis, first, "subject") == "Better subject"
    assert await field(redis, first, "body") == "New body."
    # Approved: its send is queued with the text approved, and an edit is refused.
    with pytest.raises(Refused, match="an edit lands only before approval") as late:
        await drafts.edit_and_approve(ops, APPROVER, first, "Another", None)
    assert late.value.reason == "conflict"
    assert await field(redis, first, "subject") == "Better subject"
    # Bad input: one line, nothing changed (a line break in a subject is a header injection).
    for subject, body in (("Hi\r\nBcc: x@y.example", None), ("", None), (None, " "), (None, None)):
        with pytest.raises(Refused) as bad:
            await drafts.edit_and_approve(ops, APPROVER, second, subject, body)
        assert bad.value.reason == "invalid" and "\n" not in str(bad.value)
    assert await field(redis, second, "state") == "pending"
    assert await field(redis, second, "subject") == "Hello"
    assert len(await audit(ops)) == 6


async def test_reject_and_its_refusals(ops: Ops, redis: Redis) -> None:
    (draft_id,) = await seed(redis)
    with pytest.raises(Refused, match="reason") as empty:
        await drafts.reject(ops, APPROVER, draft_id, "  ")
    assert empty.value.reason == "invalid"
    answer = await drafts.reject(ops, APPROVER, draft_id, "wrong person")
    assert (answer.state, answer.text()) == ("rejected", f"rejected {draft_id}")
    assert await field(redis, draft_id, "reason") == "wrong person"
    with pytest.raises(Refused, match=f"cannot approve draft {draft_id}: it is rejected") as late:
        await drafts.approve(ops, APPROVER, draft_id)
    assert late.value.reason == "conflict"
    with pytest.raises(Refused, match="no draft 'nope'") as missing:
        await drafts.reject(ops, APPROVER, "nope", "x")
    assert missing.value.reason == "not_found"
    outcomes = [e.outcome for e in await audit(ops)]
    assert outcomes[0].startswith("refused (not_found)")
    assert outcomes[1].startswith("refused (conflict)")
    assert outcomes[2] == f"rejected {draft_id}"


async def test_approving_several_answers_each_and_goes_on(ops: Ops, redis: Redis) -> None:
    first, second, third = await seed(redis, 3)
    await drafts.reject(ops, APPROVER, second, "no")
    answers = await drafts.approve_many(ops, APPROVER, [first, second, "nope", third, first])
    assert [(a.draft_id, type(a).__name__) for a in answers] == [
        (first, "ApproveAnswer"),
        (second, "ApproveRefused"),
        ("nope", "ApproveRefused"),
        (third, "ApproveAnswer"),
    ]
    assert [a.refused for a in answers if isinstance(a, drafts.ApproveRefused)] == [
        "conflict",
        "not_found",
    ]
    assert answers[2].text() == "not approved nope: no draft 'nope'"
    assert await redis.zcard("arq:queue") == 2
    assert len(await audit(ops)) == 1 + 4  # the rejection, then one entry per draft
    with pytest.raises(Refused, match="approve 1 to 500 drafts at once"):
        await drafts.approve_many(ops, APPROVER, [])
    with pytest.raises(Refused) as refused:
        await drafts.approve_many(ops, VIEWER, [first, third])
    assert refused.value.reason == "forbidden"
    assert len(await audit(ops)) == 7  # one refusal for the whole batch


async def test_replaying_twice_says_it_was_already_replayed(ops: Ops, redis: Redis) -> None:
    entry, _ = await two_dead_letters(redis)  # the first one replayable
    [first] = await dead_letters.replay(ops, OPERATOR, [entry])
    assert (first.outcome, first.job_id) == ("replayed", "cleanup-once")
    assert await redis.zscore("arq:queue", "cleanup-once") is not None
    [again] = await dead_letters.replay(ops, person("operator", "dee"), [entry])
    assert again.outcome == "already_replayed"
    assert again.reason is not None and again.reason.endswith("by ada")
    assert "not replayed: already replayed (at " in again.text()
    # An id that names nothing refuses the whole call, before anything is replayed.
    with pytest.raises(Refused, match="no dead letter '1-0'") as missing:
        await dead_letters.replay(ops, OPERATOR, [entry, "1-0"])
    assert missing.value.reason == "not_found"
    with pytest.raises(Refused, match="not a dead-letter entry id") as bad:
        await dead_letters.replay(ops, OPERATOR, ["x"])
    assert bad.value.reason == "invalid"
    outcomes = [e.outcome for e in await audit(ops)]
    assert [outcome.split(":")[0] for outcome in outcomes[:2]] == [
        "refused (invalid)",
        "refused (not_found)",
    ]
    assert outcomes[2:] == [f"replayed 0 of 1; {again.text()}", "replayed 1 of 1"]


async def test_purge_refuses_a_bad_age_and_says_how_many(ops: Ops, redis: Redis) -> None:
    await two_dead_letters(redis)
    for age in (-1.0, float("nan")):
        with pytest.raises(Refused) as bad:
            await dead_letters.purge(ops, OPERATOR, age)
        assert bad.value.reason == "invalid"
    assert (await dead_letters.purge(ops, OPERATOR, 86_400.0)).purged == 0
    report = await dead_letters.purge(ops, OPERATOR, None)
    assert (report.purged, report.text()) == (2, "purged 2 dead letter(s)")
    assert await redis.xlen(KEYS.dead_letters) == 0
    assert [e.target for e in await audit(ops)][:2] == [
        "every dead letter",
        "dead letters older than 86400 s",
    ]


async def test_pause_and_resume_answer_what_is_paused_after(ops: Ops, redis: Redis) -> None:
    paused = await controls.pause(ops, OPERATOR, "process_prospect")
    assert paused.paused == ["process_prospect"]
    assert (await controls.pause(ops, OPERATOR, None)).paused == ["*", "process_prospect"]
    with pytest.raises(Refused, match="no job type 'nope'") as bad:
        await controls.pause(ops, OPERATOR, "nope")
    assert bad.value.reason == "invalid"
    one = await controls.resume(ops, OPERATOR, "process_prospect")
    assert (one.paused, one.text()) == (["*"], "resumed process_prospect; paused now: *")
    assert (await controls.resume(ops, OPERATOR, None)).paused == []
    assert await redis.exists(KEYS.paused) == 0
    assert [e.action for e in await audit(ops)] == ["resume", "resume", "pause", "pause", "pause"]


async def test_a_daily_run_by_hand_and_its_backfill(ops: Ops, settings: Settings) -> None:
    today = datetime.now(settings.tz).date()
    answer = await controls.enqueue_daily_run(ops, OPERATOR, None, backfill=False)
    assert (answer.run_id, answer.job_state, answer.backfill) == (
        today.isoformat(),
        "queued",
        False,
    )
    past = today - timedelta(days=3)
    with pytest.raises(Refused, match="set backfill: true") as no_backfill:
        await controls.enqueue_daily_run(ops, OPERATOR, past, backfill=False)
    assert no_backfill.value.reason == "invalid"
    with pytest.raises(Refused, match="in the future"):
        await controls.enqueue_daily_run(ops, OPERATOR, today + timedelta(days=1), backfill=True)
    backfill = await controls.enqueue_daily_run(ops, OPERATOR, past, backfill=True)
    assert (backfill.run_id, backfill.job_state) == (past.isoformat(), "queued")
    assert "a backfill daily run for" in backfill.text()
    assert await ops.redis.zcard("arq:queue") == 2
    assert len(await audit(ops)) == 4


async def test_resolving_a_send_as_retry_warns_it_may_send_twice(ops: Ops, redis: Redis) -> None:
    first, second = await seed(redis, 2)
    for draft_id in (first, second):
        unknown = {"state": "unknown", "attempts": "1"}
        await reply(redis.hset(KEYS.draft(draft_id), mapping=unknown))
    retried = await outbox.resolve(ops, OPERATOR, first, "retry")
    assert retried.warning is not None and "may send twice" in retried.warning
    assert retried.send is not None and retried.send.job_id == f"send:{first}:retry1"
    assert retried.state == "approved"
    sent = await outbox.resolve(ops, OPERATOR, second, "sent")
    assert (sent.state, sent.send, sent.warning) == ("sent", None, None)
    with pytest.raises(Refused, match="it is sent") as again:
        await outbox.resolve(ops, OPERATOR, second, "retry")
    assert again.value.reason == "conflict"
    assert [e.action for e in await audit(ops)] == [
        "resolve as retry",
        "resolve as sent",
        "resolve as retry",
    ]


async def test_suppress_keeps_why_and_when_and_the_first_reason(ops: Ops, redis: Redis) -> None:
    for address in ("not an address", "a@b", "x" * 250 + "@y.example"):
        with pytest.raises(Refused) as bad:
            await suppression.suppress(ops, APPROVER, address, "asked")
        assert bad.value.reason == "invalid"
    with pytest.raises(Refused, match="reason"):
        await suppression.suppress(ops, APPROVER, "pat@acme.example", "two\nlines")
    assert await reply(redis.scard(KEYS.suppressed_addresses)) == 0
    answer = await suppression.suppress(ops, APPROVER, " Pat@Acme.example ", "asked by phone")
    assert (answer.address, answer.added, answer.reason) == (
        "pat@acme.example",
        True,
        "asked by phone",
    )
    assert answer.at_ms is not None
    again = await suppression.suppress(ops, OPERATOR, "pat@acme.example", "another reason")
    assert (again.added, again.reason, again.at_ms) == (False, "asked by phone", answer.at_ms)
    assert "suppressed already" in again.text()
    assert await reply(redis.sismember(KEYS.suppressed_addresses, "pat@acme.example"))
    entries = await audit(ops)
    assert len(entries) == 6
    assert (entries[1].actor, entries[1].target, entries[1].outcome) == (
        "bo",
        " Pat@Acme.example ",
        "suppressed pat@acme.example: asked by phone",
    )


async def test_the_audit_log_pages_newest_first(ops: Ops) -> None:
    log = AuditLog(ops.redis, ops.keys)
    for n in range(5):
        await log.record(OPERATOR, "pause", f"t{n}", "done")
    first = await log.page(2)
    assert [e.target for e in first] == ["t4", "t3"]
    rest = await log.page(10, before=first[-1].id)
    assert [e.target for e in rest] == ["t2", "t1", "t0"]
    with pytest.raises(Refused):
        await log.page(10, before="not-an-id")


async def test_an_error_that_stops_an_action_is_audited_too(ops: Ops, redis: Redis) -> None:
    await redis.set(KEYS.draft("d1"), "not a draft")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await drafts.approve(ops, APPROVER, "d1")
    [entry] = await audit(ops)
    assert entry.outcome.startswith("error: ResponseError: WRONGTYPE")


@pytest.mark.slow
async def test_an_approval_that_meets_its_send_already_run_queues_nothing_more(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    # The window of two approvals at once: the second's transition lands while the draft is
    # approved, and the first one's send runs to the end before the second queues.
    (draft_id,) = await seed(redis)
    with MailSink(tmp_path / "mail") as sink:
        settings = outreach_settings(redis_url, sink)
        async with open_ops(settings) as ops:
            await drafts.approve(ops, APPROVER, draft_id)
            await drain(settings)
            assert await field(redis, draft_id, "state") == "sent"
            book = sends.draft_book(ops)
            late = await sends.queue_send(ops.client, book, draft_id, f"send:{draft_id}")
        assert (late.queued_now, late.job_state) == (False, "complete")
        assert await redis.zcard("arq:queue") == 0
        assert sink.handler.delivered == 1
