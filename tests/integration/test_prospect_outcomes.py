"""A prospect's outcome is decided once and recorded once, whatever runs twice."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from jobs.clients.discovery import CompanyRecord, to_company
from jobs.clients.standins import load_sample_data
from jobs.deps import Deps, FanoutJob
from jobs.errors import RunNotOpen
from jobs.keys import Keys, prospect_job_id
from jobs.models import Company, ProspectJob
from jobs.prospecting.prospect import process_prospect, prospect_failed, prospect_lost
from jobs.prospecting.store import ProspectStore, QueueOutcome
from jobs.redisreply import reply
from settings import Settings
from tests.support.runs import open_run
from worker.app import build_deps

from .conftest import make_settings

KEYS = Keys()


class NoProgress:
    async def update(
        self, stage: str, *, done: int | None = None, total: int | None = None, **counters: Any
    ) -> None:
        return None


class LosesOneQueueReply(ProspectStore):
    """The queue step runs in Redis, then its reply is lost once (a connection blip)."""

    lost = False

    async def queue_draft(self, **kwargs: Any) -> tuple[QueueOutcome, str | None]:
        outcome = await super().queue_draft(**kwargs)
        if not self.lost:
            self.lost = True
            raise RedisConnectionError("connection lost after the script ran")
        return outcome


def sample_company(*, with_contact: bool) -> Company:
    for sample in load_sample_data().companies:
        has = bool(sample.site.contacts or sample.site.page_emails)
        company = to_company(CompanyRecord.model_validate(sample.record))
        if company is not None and has == with_contact and sample.site.variant != "missing":
            return company
    raise AssertionError("no such sample company")


async def make_deps(settings: Settings, stack: AsyncExitStack) -> Deps:
    deps, _ = await build_deps(settings, stack)
    # Every prospect with a contact is worth a draft here: the outcome under test is the queue.
    return replace(deps, icp=deps.icp.model_copy(update={"min_score": 0}))


@pytest.fixture
async def deps(redis_url: str) -> AsyncIterator[Deps]:
    async with AsyncExitStack() as stack:
        yield await make_deps(make_settings(redis_url, daily_limit=1), stack)


async def events_of(redis: Redis, kind: str) -> list[dict[str, str]]:
    return [fields for _, fields in await redis.xrange(KEYS.events) if fields["type"] == kind]


async def test_a_retry_after_the_draft_was_queued_keeps_the_queued_outcome(
    deps: Deps, redis: Redis
) -> None:
    store = LosesOneQueueReply(redis, KEYS)
    deps = replace(deps, store=store)
    run_id = deps.today()
    job = ProspectJob(run_id=run_id, company=sample_company(with_contact=True), rank=1)
    await open_run(redis, run_id, job.company.id)

    with pytest.raises(RedisConnectionError):
        await process_prospect(deps, job, NoProgress())
    result = await process_prospect(deps, job, NoProgress())  # the runtime's retry

    assert result.outcome == "queued" and result.draft_id is not None
    summary = await deps.ledger.summary(run_id)
    assert summary is not None
    assert (summary.queued, summary.done, summary.skipped) == (1, 1, {})
    assert await redis.xlen(KEYS.approvals) == 1
    assert await events_of(redis, "prospect_skipped") == []


async def test_a_prospect_that_runs_twice_records_one_outcome_and_one_event(
    deps: Deps, redis: Redis
) -> None:
    run_id = deps.today()
    job = ProspectJob(run_id=run_id, company=sample_company(with_contact=False), rank=1)
    await open_run(redis, run_id, job.company.id)

    first = await process_prospect(deps, job, NoProgress())
    second = await process_prospect(deps, job, NoProgress())

    assert first.skip_reason == second.skip_reason == "no_contact_email"
    summary = await deps.ledger.summary(run_id)
    assert summary is not None
    assert (summary.done, summary.skipped) == (1, {"no_contact_email": 1})
    assert len(await events_of(redis, "prospect_skipped")) == 1


async def test_the_failure_hook_records_once(deps: Deps, redis: Redis) -> None:
    run_id = deps.today()
    job = ProspectJob(run_id=run_id, company=sample_company(with_contact=True), rank=1)
    await open_run(redis, run_id, job.company.id)

    await prospect_failed(deps, job, "PermanentError: boom")
    await prospect_failed(deps, job, "PermanentError: boom")

    summary = await deps.ledger.summary(run_id)
    assert summary is not None and (summary.done, summary.failed) == (1, 1)
    assert summary.state == "complete"
    [event] = await events_of(redis, "prospect_failed")
    assert event["reason"] == "PermanentError: boom"


async def test_a_replayed_dead_letter_moves_the_counts_without_a_second_done(
    deps: Deps, redis: Redis
) -> None:
    run_id = deps.today()
    job = ProspectJob(run_id=run_id, company=sample_company(with_contact=True), rank=1)
    await open_run(redis, run_id, job.company.id)

    await prospect_failed(deps, job, "TransientError: the provider was down all day")
    result = await process_prospect(deps, job, NoProgress())  # replayed from the dead letters
    await process_prospect(deps, job, NoProgress())  # and redelivered once more: no change
    await prospect_failed(deps, job, "late duplicate of the failure")  # no change either

    assert result.outcome == "queued"
    summary = await deps.ledger.summary(run_id)
    assert summary is not None
    assert (summary.done, summary.failed, summary.queued) == (1, 0, 1)
    assert (summary.enriched, summary.scored, summary.drafted) == (1, 1, 1)
    assert len(await events_of(redis, "prospect_failed")) == 1


async def test_the_claim_is_released_only_when_this_job_holds_it(deps: Deps, redis: Redis) -> None:
    run_id = deps.today()
    company = sample_company(with_contact=False)
    job = ProspectJob(run_id=run_id, company=company, rank=1)
    await open_run(redis, run_id, company.id)
    await open_run(redis, "2030-01-01", company.id)
    await redis.set(KEYS.claim(company.id), prospect_job_id("another-day", company.id))
    await process_prospect(deps, job, NoProgress())
    assert await redis.get(KEYS.claim(company.id)) == prospect_job_id("another-day", company.id)

    other = ProspectJob(run_id="2030-01-01", company=company, rank=1)
    await redis.set(KEYS.claim(company.id), prospect_job_id("2030-01-01", company.id))
    await process_prospect(deps, other, NoProgress())
    assert await redis.get(KEYS.claim(company.id)) is None


async def test_records_for_a_job_its_run_did_not_fan_out_are_refused_and_counted(
    deps: Deps, redis: Redis
) -> None:
    refused: list[str] = []
    deps = replace(deps, refused=refused.append)
    run_id = deps.today()
    queued = ProspectJob(run_id=run_id, company=sample_company(with_contact=True), rank=1)
    skipped = ProspectJob(run_id=run_id, company=sample_company(with_contact=False), rank=2)

    # No run at all (Redis lost it): nothing is created.
    assert (await process_prospect(deps, queued, NoProgress())).outcome == "refused"
    assert (await process_prospect(deps, skipped, NoProgress())).outcome == "refused"
    await prospect_failed(deps, queued, "PermanentError: late")
    await prospect_lost(deps, prospect_job_id(run_id, skipped.company.id), "expired")
    assert await redis.exists(KEYS.run(run_id), KEYS.run_outcomes(run_id)) == 0
    assert await redis.xlen(KEYS.approvals) == 0
    assert await redis.get(KEYS.quota(deps.today())) is None
    assert await reply(redis.sismember(KEYS.contacted, queued.company.id)) == 0
    # A run of the same day opened since, without this prospect: nothing counts in it either.
    await open_run(redis, run_id, "another-company")
    assert (await process_prospect(deps, queued, NoProgress())).outcome == "refused"
    summary = await deps.ledger.summary(run_id)
    assert summary is not None and (summary.done, summary.total) == (0, 1)

    assert refused == ["approval", "tally", "tally", "tally", "approval"]


async def test_a_fan_out_into_a_run_that_is_not_open_writes_nothing(
    deps: Deps, redis: Redis
) -> None:
    job = FanoutJob(
        prospect_job_id("2026-11-22", "c1"),
        "process_prospect",
        {},
        claim_key=KEYS.claim("c1"),
        count_key=KEYS.run("2026-11-22"),
        members_key=KEYS.run_members("2026-11-22"),
    )
    assert await deps.enqueuer.enqueue_many([job]) == ["unopened"]
    assert await redis.keys("*") == []
    with pytest.raises(RunNotOpen):
        await deps.ledger.close_fanout("2026-11-22", discovered=1, skipped={}, now_ms=1)
    assert await redis.keys("*") == []


async def test_a_result_left_by_the_lost_run_does_not_keep_the_new_runs_job_out(
    deps: Deps, redis: Redis
) -> None:
    job_id = prospect_job_id("2026-11-22", "c1")
    await redis.set(f"arq:result:{job_id}", "from the run Redis lost")
    await deps.ledger.open("2026-11-22", 1)
    job = FanoutJob(
        job_id,
        "process_prospect",
        {},
        count_key=KEYS.run("2026-11-22"),
        members_key=KEYS.run_members("2026-11-22"),
    )
    assert await deps.enqueuer.enqueue_many([job]) == ["added"]
    assert await deps.enqueuer.enqueue_many([job]) == ["duplicate"]  # a retry of the fan-out
    assert await reply(redis.smembers(KEYS.run_members("2026-11-22"))) == {job_id}
    assert await redis.ttl(KEYS.run_members("2026-11-22")) > 0


async def test_a_run_opened_before_runs_listed_their_jobs_still_takes_its_jobs(
    deps: Deps, redis: Redis
) -> None:
    # As the previous version left a run mid-way at an upgrade: open, counted, no member list.
    run_id = deps.today()
    run = {"started_ms": "1", "total": "1", "fanout_closed": "1"}
    await reply(redis.hset(KEYS.run(run_id), mapping=run))
    job = ProspectJob(run_id=run_id, company=sample_company(with_contact=True), rank=1)

    assert (await process_prospect(deps, job, NoProgress())).outcome == "queued"
    summary = await deps.ledger.summary(run_id)
    assert summary is not None and (summary.state, summary.done, summary.queued) == (
        "complete",
        1,
        1,
    )
    assert await redis.xlen(KEYS.approvals) == 1
