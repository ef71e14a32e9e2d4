"""`python -m worker stats`: the queue seen whole, from Redis alone (no Prometheus needed).

Depth by job type and priority class (the same bounded sample as the metrics: exact up to a few
hundred jobs per state, scaled beyond; the class read from the shift kept beside each sampled
job, worker/scheduling/queueorder.py), jobs in flight on every live replica, outcomes of the last
hour across replicas (published by each worker's sampler), dead letters, pause state and the
daily run. The data is a pydantic model (`--json` prints it); `render` makes the table.
"""

import time
from datetime import UTC, datetime

from pydantic import BaseModel
from redis.asyncio import Redis

from settings import Settings
from worker.keys import WorkerKeys
from worker.observability.daily_state import DailyState, read_daily_state
from worker.observability.queue_depth import QueueFigures, sample_queue
from worker.observability.replicas import ReplicaSnapshot, read_outcomes, read_replicas
from worker.registry import job_types
from worker.runtime.outcomes import OUTCOME_KINDS, UNKNOWN_FUNCTION
from worker.scheduling.pause import ALL, PauseSwitch
from worker.scheduling.queueorder import PRIORITIES, PriorityScale

NOTHING_QUEUED = "-"  # the priority of a type's row when none of its jobs is queued


class Depth(BaseModel):
    job_type: str
    priority: str  # a class of worker/scheduling/queueorder.py, or NOTHING_QUEUED
    due: int
    scheduled: int


class Stats(BaseModel):
    at: datetime
    depth: list[Depth]
    depth_exact: bool  # False: the split by type is scaled from a sample (totals are exact)
    due: int
    scheduled: int
    oldest_due_age_s: float | None  # None: nothing is due, so there is no oldest
    in_flight: dict[str, int]  # job type -> running now, summed over live replicas
    replicas: list[ReplicaSnapshot]
    outcomes_last_hour: dict[str, dict[str, int]]  # job type -> outcome -> count
    dead_letters: int
    # The whole queue paused (None: not known); and the job types paused on their own.
    paused: bool | None
    paused_types: list[str] = []
    daily: DailyState


async def collect_stats(
    settings: Settings, *, queue_redis: Redis, redis: Redis, now_s: float | None = None
) -> Stats:
    """`queue_redis` returns bytes, `redis` str (as in the worker)."""
    now = time.time() if now_s is None else now_s
    keys = WorkerKeys(settings.key_prefix)
    types = (*job_types(settings), UNKNOWN_FUNCTION)
    figures = await sample_queue(
        queue_redis,
        settings.queue_name,
        types,
        now_ms=int(now * 1000),
        keys=keys,
        priorities=PriorityScale(settings.priority_step_s),
    )
    ttl = 3 * settings.metrics_sample_s
    replicas = await read_replicas(redis, keys, now_s=now, ttl_s=ttl)
    in_flight: dict[str, int] = {}
    for replica in replicas:
        for job_type, count in replica.in_flight.items():
            in_flight[job_type] = in_flight.get(job_type, 0) + count
    today = datetime.fromtimestamp(now, UTC).astimezone(settings.tz).date()
    paused = await PauseSwitch(redis, keys).read()
    return Stats(
        at=datetime.fromtimestamp(now, UTC),
        depth=depth_rows(figures, types),
        depth_exact=figures.exact,
        due=figures.due,
        scheduled=figures.scheduled,
        oldest_due_age_s=figures.oldest_due_age_s if figures.due else None,
        in_flight=in_flight,
        replicas=replicas,
        outcomes_last_hour=await read_outcomes(redis, keys, now_s=now),
        dead_letters=await redis.xlen(keys.dead_letters),
        paused=ALL in paused,
        paused_types=sorted(paused - {ALL}),
        daily=await read_daily_state(redis, keys, today=today, limit=settings.daily_limit),
    )


def depth_rows(figures: QueueFigures, types: tuple[str, ...]) -> list[Depth]:
    """One row per job type and class with jobs queued, highest class first; a type with none
    queued keeps one row of zeros, so every type shows."""
    rows = []
    for job_type in types:
        due = figures.by_priority["due"].get(job_type, {})
        scheduled = figures.by_priority["scheduled"].get(job_type, {})
        seen = [p for p in PRIORITIES if p in due or p in scheduled]
        rows += [
            Depth(
                job_type=job_type,
                priority=priority,
                due=due.get(priority, 0),
                scheduled=scheduled.get(priority, 0),
            )
            for priority in seen
        ] or [Depth(job_type=job_type, priority=NOTHING_QUEUED, due=0, scheduled=0)]
    return rows


async def read_stats(settings: Settings) -> Stats:
    """Connect, collect, close: what the CLI calls."""
    queue_redis = Redis.from_url(settings.redis_url)
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        return await collect_stats(settings, queue_redis=queue_redis, redis=redis)
    finally:
        await queue_redis.aclose()
        await redis.aclose()


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Text columns to the left, numbers to the right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            cell.rjust(w) if cell.isdigit() else cell.ljust(w)
            for cell, w in zip(row, widths, strict=True)
        ).rstrip()
        for row in [header, *rows]
    ]


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else "never"


def render(stats: Stats) -> str:
    lines = [f"prospect-worker stats at {stats.at.isoformat(timespec='seconds')}", ""]
    estimate = "" if stats.depth_exact else " (split by type estimated from a sample)"
    lines.append(f"queue: {stats.due} due, {stats.scheduled} scheduled{estimate}")
    rows, shown = [], set()
    for d in stats.depth:
        # Running jobs are counted by type, not class: once, on the type's first row.
        in_flight = "" if d.job_type in shown else str(stats.in_flight.get(d.job_type, 0))
        shown.add(d.job_type)
        rows.append([d.job_type, d.priority, str(d.due), str(d.scheduled), in_flight])
    lines += _table(["job type", "priority", "due", "scheduled", "in flight"], rows)
    oldest = stats.oldest_due_age_s
    lines.append(
        f"oldest due job: {oldest:.1f}s"
        if oldest is not None
        else "oldest due job: none (nothing due)"
    )
    lines.append(f"live replicas: {len(stats.replicas)}")
    lines += ["", "outcomes in the last hour:"]
    types = sorted(stats.outcomes_last_hour)
    lines += (
        _table(
            ["job type", *OUTCOME_KINDS],
            [
                [t, *(str(stats.outcomes_last_hour[t].get(k, 0)) for k in OUTCOME_KINDS)]
                for t in types
            ],
        )
        if types
        else ["  none"]
    )
    paused = "unknown" if stats.paused is None else str(stats.paused).lower()
    if stats.paused_types:
        paused += f" (types paused: {', '.join(stats.paused_types)})"
    daily = stats.daily
    lines += [
        "",
        f"dead letters: {stats.dead_letters}",
        f"paused: {paused}",
        (
            f"daily run: {daily.run_id or 'none in the last days'} ({daily.state}), started "
            f"{_when(daily.last_start_ts)}, last success {_when(daily.last_success_ts)}"
        ),
        (
            f"  discovered {daily.discovered}, fanned out {daily.fanned_out}, drafted "
            f"{daily.drafted}, queued {daily.queued}, failed {daily.failed}"
        ),
        f"  quota {daily.quota_day}: {daily.quota_used} of {daily.quota_limit} drafts",
    ]
    return "\n".join(lines)
