"""daily_prospect_queue: quota, discovery, ranking, fan-out.

The run id is the local calendar day, and every per-prospect job id is derived from it, so a
second run on the same day (a manual run after the cron tick, or a retry) enqueues nothing twice.
What the run decides before fanning out (the quota it saw, the prospects it chose) is kept as
the run's plan: every later try of that day fans out the same plan, so a retry finishes a
fan-out a failed try left half done instead of ranking again against a contacted set that its
own jobs have changed since.
"""

import math
import time

from jobs.clients.discovery import icp_query
from jobs.deps import Deps, FanoutJob, Progress
from jobs.errors import InvalidPayload, RunNotOpen
from jobs.keys import prospect_job_id
from jobs.models import (
    Company,
    DailyRunRequest,
    DailyRunResult,
    FanoutPlan,
    Priority,
    ProspectJob,
    resolve_run_id,
)
from jobs.prospecting.paging import discover_resumably
from jobs.prospecting.prospect_job import PROSPECT
from jobs.prospecting.score import rank_companies
from jobs.prospecting.store import now_ms

PROSPECT_JOB = PROSPECT.name

# Every skip reason of the fan-out, so closing it again sets each one (zeros included).
PLAN_SKIPS = ("already_contacted", "ranked_below_cutoff")
IN_FLIGHT = "already_in_flight"  # another run has the prospect's job in flight (its claim)

__all__ = ["PROSPECT_JOB", "daily_failed", "daily_prospect_queue", "prospect_job_id"]


async def daily_prospect_queue(
    deps: Deps, request: DailyRunRequest, progress: Progress
) -> DailyRunResult:
    started_at, started = deps.clock(), time.monotonic()
    run_id = resolve_run_id(request, deps.local_date())
    await deps.ledger.open(run_id, now_ms())

    plan = await deps.ledger.load_plan(run_id)
    if plan is None:
        plan = await deps.ledger.save_plan(run_id, await _plan(deps, run_id, progress))

    await progress.update("fan_out", run_id=run_id, done=0, total=len(plan.chosen))
    quota_left = max(0, deps.config.daily_limit - plan.quota_used_before)
    outcomes = await deps.enqueuer.enqueue_many(
        [
            _fanout_job(deps, run_id, company, rank, rank_class(rank, quota_left))
            for rank, company in enumerate(plan.chosen, 1)
        ]
    )
    if "unopened" in outcomes:
        deps.refused("fanout")
        raise RunNotOpen(f"run {run_id} is no longer open (Redis lost it): fan-out not written")
    # A duplicate is a job an earlier try added (and counted): neither new nor a skip.
    skipped = {**plan.skipped, IN_FLIGHT: outcomes.count("claimed")}
    total = await deps.ledger.close_fanout(
        run_id,
        discovered=plan.discovered,
        skipped=skipped,
        now_ms=now_ms(),
        discovery_incomplete=plan.discovery_incomplete,
    )
    await progress.update("fanned_out", run_id=run_id, done=total, total=total)
    return DailyRunResult(
        run_id=run_id,
        quota_limit=deps.config.daily_limit,
        quota_used_before=plan.quota_used_before,
        discovered=plan.discovered,
        fanned_out=total,
        added=outcomes.count("added"),
        skipped={reason: count for reason, count in skipped.items() if count},
        discovery_incomplete=plan.discovery_incomplete,
        duration_s=round(time.monotonic() - started, 3),
        started_at=started_at,
    )


async def daily_failed(deps: Deps, request: DailyRunRequest, reason: str) -> None:
    """Called by the runtime once the daily run has failed for good: its run says failed (not
    running for ever) with the reason, unless its fan-out had closed already."""
    try:
        run_id = resolve_run_id(request, deps.local_date())
    except InvalidPayload:
        return  # no run was ever opened for it
    await deps.ledger.fail_fanout(run_id, reason=reason[:500], now_ms=now_ms())


async def _plan(deps: Deps, run_id: str, progress: Progress) -> FanoutPlan:
    await progress.update("quota", run_id=run_id)
    # The drafts of any run are counted against the day they are queued on: today's quota.
    used = await deps.store.quota_used(deps.today())
    remaining = max(0, deps.config.daily_limit - used)
    skipped = dict.fromkeys(PLAN_SKIPS, 0)
    if not remaining:
        return FanoutPlan(quota_used_before=used, discovered=0, chosen=(), skipped=skipped)

    await progress.update("discovery", run_id=run_id)
    query = icp_query(**deps.icp.discovery_filter())
    companies, incomplete = await discover_resumably(
        deps.discovery,
        query,
        limit=deps.config.discovery_cap,
        log=deps.ledger.paging(run_id),
        retry=deps.config.page_retry,
        sleep=deps.sleep,
    )

    await progress.update("ranking", run_id=run_id, discovered=len(companies))
    contacted = await deps.store.contacted([company.id for company in companies])
    fresh = [company for company, seen in zip(companies, contacted, strict=True) if not seen]
    # Fan out more than the quota left: some prospects will be skipped (no email, low score);
    # the queue step enforces the quota exactly.
    wanted = math.ceil(remaining * (1 + deps.config.fanout_headroom))
    chosen = rank_companies(fresh, deps.icp)[:wanted]
    skipped["already_contacted"] = len(companies) - len(fresh)
    skipped["ranked_below_cutoff"] = len(fresh) - len(chosen)
    return FanoutPlan(
        quota_used_before=used,
        discovered=len(companies),
        chosen=tuple(chosen),
        skipped=skipped,
        discovery_incomplete=incomplete,
    )


def rank_class(rank: int, quota_left: int) -> Priority:
    """A prospect's priority class from its ICP rank: the best half of what the day's quota can
    take is hot, the rest of the quota warm, the headroom beyond it cold."""
    if rank <= max(1, quota_left // 2):
        return "hot"
    return "warm" if rank <= quota_left else "cold"


def _fanout_job(
    deps: Deps, run_id: str, company: Company, rank: int, priority: Priority
) -> FanoutJob:
    payload = ProspectJob(run_id=run_id, company=company, rank=rank)
    return FanoutJob(
        job_id=prospect_job_id(run_id, company.id),
        function=PROSPECT_JOB,
        payload=payload.model_dump(mode="json"),
        priority=priority,
        rank=rank,
        claim_key=deps.keys.claim(company.id),
        count_key=deps.keys.run(run_id),
        members_key=deps.keys.run_members(run_id),
    )
