"""daily_prospect_queue: quota, discovery, ranking, fan-out.

The run id is the local calendar day, and every per-prospect job id is derived from it, so a
second run on the same day (a manual run after the cron tick, or a retry) enqueues nothing twice.
"""

import math
import time
from collections import Counter

from jobs.clients.discovery import icp_query
from jobs.deps import Deps, FanoutJob, Progress
from jobs.keys import prospect_job_id
from jobs.models import Company, DailyRunRequest, DailyRunResult, ProspectJob
from jobs.score import rank_companies
from jobs.store import now_ms

PROSPECT_JOB = "process_prospect"

# What the enqueuer's outcomes mean for the run's skip tally.
FANOUT_SKIPS = {"duplicate": "already_fanned_out", "claimed": "already_in_flight"}


async def daily_prospect_queue(
    deps: Deps, request: DailyRunRequest, progress: Progress
) -> DailyRunResult:
    started_at, started = deps.clock(), time.monotonic()
    run_id = request.run_date or deps.today()
    await deps.ledger.open(run_id, now_ms())

    await progress.update("quota", run_id=run_id)
    used = await deps.store.quota_used(run_id)
    remaining = max(0, deps.config.daily_limit - used)
    skipped: Counter[str] = Counter()
    companies: list[Company] = []
    added = 0
    if remaining:
        await progress.update("discovery", run_id=run_id)
        query = icp_query(**deps.icp.discovery_filter())
        companies = await deps.discovery.discover(query, limit=deps.config.discovery_cap)

        await progress.update("ranking", run_id=run_id, discovered=len(companies))
        contacted = await deps.store.contacted([company.id for company in companies])
        fresh = [company for company, seen in zip(companies, contacted, strict=True) if not seen]
        skipped["already_contacted"] = len(companies) - len(fresh)
        # Fan out more than the quota left: some prospects will be skipped (no email, low
        # score); the queue step enforces the quota exactly.
        wanted = math.ceil(remaining * (1 + deps.config.fanout_headroom))
        chosen = rank_companies(fresh, deps.icp)[:wanted]
        skipped["ranked_below_cutoff"] = len(fresh) - len(chosen)

        await progress.update("fan_out", run_id=run_id, done=0, total=len(chosen))
        outcomes = await deps.enqueuer.enqueue_many(
            [_fanout_job(deps, run_id, company, rank) for rank, company in enumerate(chosen, 1)]
        )
        for outcome in outcomes:
            if outcome == "added":
                added += 1
            else:
                skipped[FANOUT_SKIPS[outcome]] += 1

    await deps.ledger.close_fanout(
        run_id, added=added, discovered=len(companies), skipped=+skipped, now_ms=now_ms()
    )
    await progress.update("fanned_out", run_id=run_id, done=added, total=added)
    return DailyRunResult(
        run_id=run_id,
        quota_limit=deps.config.daily_limit,
        quota_used_before=used,
        discovered=len(companies),
        fanned_out=added,
        skipped=dict(+skipped),
        duration_s=round(time.monotonic() - started, 3),
        started_at=started_at,
    )


def _fanout_job(deps: Deps, run_id: str, company: Company, rank: int) -> FanoutJob:
    payload = ProspectJob(run_id=run_id, company=company, rank=rank)
    return FanoutJob(
        job_id=prospect_job_id(run_id, company.id),
        function=PROSPECT_JOB,
        payload=payload.model_dump(mode="json"),
        claim_key=deps.keys.claim(company.id),
    )
