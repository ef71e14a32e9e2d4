"""The daily pipeline end to end on a real Redis, with the offline stand-ins answering."""

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from jobs.clients.discovery import icp_query
from jobs.clients.standins import load_sample_data, matches
from jobs.keys import Keys
from jobs.models import Draft
from jobs.outreach.drafting import OutreachBrief, TemplateWriter
from jobs.redisreply import reply
from settings import Settings
from worker.client import QueueClient
from worker.registry import DAILY_JOB, job_specs

from .conftest import drain, make_settings

KEYS = Keys()


async def run_daily(client: QueueClient, settings: Settings) -> dict[str, Any]:
    job_id = await client.enqueue(DAILY_JOB)
    await drain(settings)
    report = await client.report(job_id)
    assert report.state == "complete", report
    assert report.run is not None
    return {"report": report, "run": report.run, "result": report.result}


@pytest.mark.slow
async def test_sample_data_reaches_the_approval_stream(
    client: QueueClient, settings: Settings, redis: Redis
) -> None:
    outcome = await run_daily(client, settings)
    run, result = outcome["run"], outcome["result"]

    query = icp_query(**settings.icp.discovery_filter())
    fitting = [c for c in load_sample_data().companies if matches(c.record, query)]
    assert len(load_sample_data().companies) >= 200
    assert result["discovered"] == len(fitting) >= 100
    assert result["fanned_out"] == run.total > 0
    assert run.state == "complete" and run.done == run.total
    assert run.failed == 0
    assert run.queued == settings.daily_limit  # headroom covers the skipped ones
    assert run.enriched == run.scored == run.total
    assert (
        sum(
            v
            for k, v in run.skipped.items()
            if k in ("no_contact_email", "below_min_score", "quota_reached")
        )
        == run.total - run.queued
    )

    # The tally matches what Redis holds, read independently.
    entries = await redis.xrange(KEYS.approvals)
    assert len(entries) == run.queued
    assert int(await redis.get(KEYS.quota(run.run_id))) == run.queued
    assert await reply(redis.scard(KEYS.contacted)) == run.queued
    for entry_id, fields in entries:
        draft = await reply(redis.hgetall(KEYS.draft(fields["company_id"])))
        assert draft["stream_id"] == entry_id
        assert draft["state"] == "pending"
        assert fields["to"].endswith(".example")
        assert fields["writer"] == "template"
        assert int(fields["score"]) >= settings.icp.min_score
    events = await redis.xrange(KEYS.events)
    assert sum(1 for _, e in events if e["type"] == "draft_queued") == run.queued
    # The score breakdown is kept with the prospect.
    company_id = entries[0][1]["company_id"]
    score = await reply(redis.hget(KEYS.prospect(run.run_id, company_id), "score"))
    assert score is not None
    assert '"factors"' in score


@pytest.mark.slow
async def test_second_run_same_day_enqueues_nothing(
    client: QueueClient, settings: Settings, redis: Redis
) -> None:
    first = await run_daily(client, settings)
    approvals = await redis.xlen(KEYS.approvals)

    second = await run_daily(client, settings)

    # The day's run was planned once: the second run re-drives the same plan, whose jobs all
    # exist already, and reports the run as a whole.
    assert second["result"]["fanned_out"] == first["run"].total
    assert second["result"]["quota_used_before"] == first["result"]["quota_used_before"]
    assert second["result"]["skipped"] == first["result"]["skipped"]
    assert await redis.xlen(KEYS.approvals) == approvals
    assert second["run"].total == first["run"].total
    assert second["run"].done == first["run"].done


@pytest.mark.slow
async def test_a_later_run_skips_companies_already_contacted(redis_url: str, redis: Redis) -> None:
    # A big limit: the first run drafts for every prospect it can, so a second run with a
    # fresh quota day finds them all contacted.
    settings = make_settings(redis_url, daily_limit=1000)
    client = await QueueClient.connect(settings, specs=job_specs(settings))
    try:
        first = await run_daily(client, settings)
        queued = first["run"].queued
        # Another day's run (a backfill: a new run id, the same companies, today's quota).
        past = (datetime.now(settings.tz).date() - timedelta(days=3)).isoformat()
        job_id = await client.enqueue(DAILY_JOB, {"run_date": past, "backfill": True})
        await drain(settings)
        report = await client.report(job_id)
    finally:
        await client.close()
    assert report.result["skipped"]["already_contacted"] == queued
    assert report.result["fanned_out"] == first["run"].total - queued


async def test_quota_spent_elsewhere_limits_the_run(
    client: QueueClient, settings: Settings, redis: Redis
) -> None:
    today = await client.report(await client.enqueue(DAILY_JOB))
    assert today.state == "queued"
    day = datetime.now(settings.tz).date().isoformat()
    await redis.set(KEYS.quota(day), settings.daily_limit - 3)
    await drain(settings)
    run = (await client.report(today.job_id)).run
    assert run is not None and run.queued == 3
    assert await redis.xlen(KEYS.approvals) == 3


class GatedWriter:
    """The template writer, held at a gate after `let_through` drafts."""

    def __init__(self, let_through: int) -> None:
        self.inner = TemplateWriter()
        self.let_through = let_through
        self.gate = asyncio.Event()

    async def write(self, brief: OutreachBrief) -> Draft:
        if self.let_through <= 0:
            await self.gate.wait()
        self.let_through -= 1
        return await self.inner.write(brief)


@pytest.mark.slow
async def test_the_daily_run_reports_progress_while_its_jobs_run(
    client: QueueClient, settings: Settings
) -> None:
    writer = GatedWriter(let_through=10)
    job_id = await client.enqueue(DAILY_JOB)
    draining = asyncio.create_task(drain(settings, lambda deps: replace(deps, writer=writer)))
    try:
        for _ in range(1000):
            report = await client.report(job_id)
            if report.run is not None and report.run.queued >= 10:
                break
            await asyncio.sleep(0.01)
        assert report.state == "complete"  # the fan-out itself is done...
        assert report.run is not None and report.run.state == "running"  # ...its jobs are not
        assert 0 < report.run.done < report.run.total
        assert report.run.queued == 10
    finally:
        writer.gate.set()
        await draining
    final = await client.report(job_id)
    assert final.run is not None and final.run.state == "complete"
    assert final.run.done == final.run.total and final.run.queued == settings.daily_limit
    assert final.run.duration_s is not None
