"""The day at a glance: the daily run and its funnel, the queue, the workers, what waits for a
person. Everything `stats` reads (worker/observability/stats_report.py), plus the run's progress
and the drafts it led to, and the sends left `unknown`.

Bounded whatever the queue's size: the queue's split by type is the stats' bounded sample, the
funnel reads the run's own prospects (its `total`, a few hundred at most), the unknown sends
are counted from their index (ZCARD).
"""

import time
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from jobs.prospecting.runs import RunLedger
from jobs.redisreply import reply
from worker.observability.stats_report import Stats, collect_stats
from worker.ops.context import Ops

# discovering: the run's job is still finding and fanning out prospects; working: the fan-out
# closed and its prospect jobs are running; complete; failed: the run's job failed for good
# before its fan-out closed.
Stage = Literal["discovering", "working", "complete", "failed"]


class Funnel(BaseModel):
    """The run's prospects, stage by stage; each figure a subset of the one before."""

    discovered: int
    fanned_out: int
    drafted: int
    queued: int  # for approval
    approved: int
    sent: int
    replied: int


class RunProgress(BaseModel):
    run_id: str
    stage: Stage
    done: int  # prospect jobs ended, either way
    total: int  # prospect jobs fanned out so far
    failed: int
    rate_per_s: float | None  # prospects done per second since the run started; None before
    started_at: datetime | None
    finished_at: datetime | None
    skipped: dict[str, int]
    error: str | None  # why the run's own job failed, when it did
    funnel: Funnel


class TodayView(BaseModel):
    at: datetime
    run: RunProgress | None  # the latest run of the last days; None when there is none
    # Queue depth by type and class, in flight by type, workers alive with their last
    # heartbeat (`replicas[].seen_ts`), pause, dead letters waiting, the quota: as `stats`.
    stats: Stats
    unknown_sends: int  # sends whose outcome a person must decide (the outbox page)


async def today(ops: Ops) -> TodayView:
    now = time.time()
    stats = await collect_stats(
        ops.settings, queue_redis=ops.client.queue_redis, redis=ops.redis, now_s=now
    )
    run = None
    if stats.daily.run_id is not None:
        run = await run_progress(ops, stats.daily.run_id, now_s=now)
    unknown = int(await ops.redis.zcard(ops.keys.unknown_sends))
    return TodayView(at=stats.at, run=run, stats=stats, unknown_sends=unknown)


async def run_progress(ops: Ops, run_id: str, *, now_s: float) -> RunProgress | None:
    summary = await RunLedger(ops.redis, ops.keys).summary(run_id)
    if summary is None:  # expired since the stats read it
        return None
    started_ms, finished_ms, closed = await reply(
        ops.redis.hmget(ops.keys.run(run_id), ["started_ms", "finished_ms", "fanout_closed"])
    )
    stage: Stage = (
        "complete"
        if summary.state == "complete"
        else "failed"
        if summary.state == "failed"
        else "working"
        if closed == "1"
        else "discovering"
    )
    end_s = int(finished_ms) / 1000 if finished_ms else now_s
    elapsed = end_s - int(started_ms) / 1000 if started_ms else 0.0
    approved, sent, replied = await draft_stages(ops, run_id)
    return RunProgress(
        run_id=run_id,
        stage=stage,
        done=summary.done,
        total=summary.total,
        failed=summary.failed,
        rate_per_s=round(summary.done / elapsed, 2) if elapsed > 0 and summary.done else None,
        started_at=_at(started_ms),
        finished_at=_at(finished_ms),
        skipped=summary.skipped,
        error=summary.fanout_error,
        funnel=Funnel(
            discovered=summary.discovered,
            fanned_out=summary.total,
            drafted=summary.drafted,
            queued=summary.queued,
            approved=approved,
            sent=sent,
            replied=replied,
        ),
    )


async def draft_stages(ops: Ops, run_id: str) -> tuple[int, int, int]:
    """How many of the run's queued drafts were approved, sent and replied to: the prospects
    the run recorded as queued (its outcomes hash), each draft's own stamps, two round trips."""
    outcomes = await reply(ops.redis.hgetall(ops.keys.run_outcomes(run_id)))
    queued = [company for company, outcome in outcomes.items() if outcome == "queued"]
    if not queued:
        return 0, 0, 0
    async with ops.redis.pipeline(transaction=False) as pipe:
        for company in queued:
            pipe.hmget(ops.keys.draft(company), ["run_id", "approved_ms", "sent_ms", "replied_ms"])
        stamps = await pipe.execute()
    # A draft another run wrote for the same company is not this run's.
    own = [fields for fields in stamps if fields[0] == run_id]
    return (
        sum(1 for fields in own if fields[1]),
        sum(1 for fields in own if fields[2]),
        sum(1 for fields in own if fields[3]),
    )


def _at(ms: str | None) -> datetime | None:
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if ms else None
