"""The quota counts the local day a draft is queued on, whatever the run's date."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from jobs.deps import Deps
from jobs.keys import Keys
from jobs.models import ProspectJob
from jobs.prospecting.prospect import process_prospect
from tests.support.runs import open_run
from worker.client import PayloadRejected, QueueClient
from worker.registry import DAILY_JOB, job_specs

from .conftest import drain, make_settings
from .test_prospect_outcomes import NoProgress, make_deps, sample_company

KEYS = Keys()


@pytest.fixture
async def deps(redis_url: str) -> AsyncIterator[Deps]:
    async with AsyncExitStack() as stack:
        yield await make_deps(make_settings(redis_url, daily_limit=1), stack)


async def test_a_prospect_of_another_days_run_counts_against_todays_quota(
    deps: Deps, redis: Redis
) -> None:
    today = deps.today()
    await redis.set(KEYS.quota(today), 1)  # today's one draft is spent
    job = ProspectJob(run_id="2026-01-05", company=sample_company(with_contact=True), rank=1)
    await open_run(redis, job.run_id, job.company.id)

    result = await process_prospect(deps, job, NoProgress())

    assert result.skip_reason == "quota_reached"
    assert await redis.xlen(KEYS.approvals) == 0
    assert await redis.get(KEYS.quota("2026-01-05")) is None


async def test_the_queue_step_counts_the_day_it_runs_on(deps: Deps, redis: Redis) -> None:
    # A run of yesterday whose prospect queues its draft today (a retry past midnight).
    job = ProspectJob(run_id="2026-01-05", company=sample_company(with_contact=True), rank=1)
    await open_run(redis, job.run_id, job.company.id)
    result = await process_prospect(deps, job, NoProgress())
    assert result.outcome == "queued"
    assert await redis.get(KEYS.quota(deps.today())) == "1"


async def test_a_daily_run_for_another_day_without_backfill_is_refused_at_enqueue(
    client: QueueClient, redis: Redis
) -> None:
    # The worker's own refusal (another arq client queued it): tests/integration/test_cli_truth.
    with pytest.raises(PayloadRejected, match="set backfill: true"):
        await client.enqueue(DAILY_JOB, {"run_date": "2026-01-05"})
    assert await redis.zcard("arq:queue") == 0
    assert await redis.xlen(KEYS.approvals) == 0


async def test_a_backfill_run_shares_todays_quota(redis_url: str, redis: Redis) -> None:
    settings = make_settings(redis_url, daily_limit=5)
    client = await QueueClient.connect(settings, specs=job_specs(settings))
    try:
        await client.enqueue(DAILY_JOB)
        backfill = await client.enqueue(DAILY_JOB, {"run_date": "2026-01-05", "backfill": True})
        await drain(settings)
        report = await client.report(backfill)
    finally:
        await client.close()
    assert report.state == "complete", report.error
    assert report.run is not None and report.run.run_id == "2026-01-05"
    today = datetime.now(UTC).astimezone(settings.tz).date().isoformat()
    assert await redis.xlen(KEYS.approvals) == 5
    assert await redis.get(KEYS.quota(today)) == "5"
