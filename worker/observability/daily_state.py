"""The daily run as the monitoring sees it: the latest run's state and counts, the last success,
and today's quota, read from Redis in a few small calls (the run hashes of the last days)."""

from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel
from redis.asyncio import Redis

from jobs.prospecting.runs import RunLedger
from worker.keys import WorkerKeys

# A run id is its local date; looking back this many days finds the last success even after a
# missed day, so "no success in 25 h" stays true rather than going blank.
LOOKBACK_DAYS = 2


class DailyState(BaseModel):
    run_id: str | None  # the latest run within the look-back, if any
    state: Literal["none", "running", "complete", "failed"]
    last_start_ts: float  # unix seconds; 0 when none within the look-back
    last_success_ts: float  # unix seconds of the latest complete run's finish; 0 when none
    discovered: int = 0
    fanned_out: int = 0
    drafted: int = 0
    queued: int = 0
    failed: int = 0
    quota_day: str
    quota_used: int
    quota_limit: int


async def read_daily_state(
    redis: Redis, keys: WorkerKeys, *, today: date, limit: int
) -> DailyState:
    """`redis` returns str. The timestamps are the run hash's own `started_ms` / `finished_ms`
    (see jobs/prospecting/runs.py); the counts come from the ledger's summary."""
    days = [(today - timedelta(days=back)).isoformat() for back in range(LOOKBACK_DAYS + 1)]
    async with redis.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hmget(keys.run(day), ["started_ms", "finished_ms"])
        pipe.get(keys.quota(today.isoformat()))
        *stamps, quota = await pipe.execute()
    latest = next((day for day, (start, _) in zip(days, stamps, strict=True) if start), None)
    success = next((int(end) for _, end in stamps if end), 0)
    state = DailyState(
        run_id=latest,
        state="none",
        last_start_ts=0.0,
        last_success_ts=success / 1000,
        quota_day=today.isoformat(),
        quota_used=int(quota or 0),
        quota_limit=limit,
    )
    if latest is None:
        return state
    started = int(stamps[days.index(latest)][0])
    summary = await RunLedger(redis, keys).summary(latest)
    if summary is None:  # expired between the two reads
        return state
    return state.model_copy(
        update={
            "state": summary.state,
            "last_start_ts": started / 1000,
            "discovered": summary.discovered,
            "fanned_out": summary.total,
            "drafted": summary.drafted,
            "queued": summary.queued,
            "failed": summary.failed,
        }
    )
