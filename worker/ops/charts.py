"""Jobs and failures per hour by job type, and the mean processing time, for the last two days:
from the per-minute counts every worker keeps in Redis (worker/observability/minute_counts.py),
so the console needs no Prometheus: their hourly hashes, 48 for two days, in one round trip.
"""

import time
from datetime import UTC, datetime

from pydantic import BaseModel

from worker.observability.minute_counts import (
    BUCKET_TTL_S,
    HOUR_S,
    RUN_SECONDS,
    RUNS,
    read_counts,
)
from worker.ops.context import Ops
from worker.ops.errors import Refused

# Outcomes that end a job for good without success: each left a dead letter.
FAILURES = ("failed", "poison", "expired")
MAX_HOURS = BUCKET_TTL_S // HOUR_S


class TypeSeries(BaseModel):
    """One job type, one value per hour of `ChartSeries.hours`."""

    job_type: str
    done: list[int]  # succeeded
    failed: list[int]  # failed for good (failed, poison, expired)
    retried: list[int]  # a try failed and another is coming
    mean_s: list[float | None]  # mean seconds a body ran; None in an hour with no run


class ChartSeries(BaseModel):
    hours: list[datetime]  # the start of each hour, oldest first; the last is the current one
    types: list[TypeSeries]  # the job types with any outcome in the span


async def series(ops: Ops, hours: int = 48, *, now_s: float | None = None) -> ChartSeries:
    if not 1 <= hours <= MAX_HOURS:
        raise Refused(f"charts cover 1 to {MAX_HOURS} hours (what the counts keep), not {hours}")
    now = time.time() if now_s is None else now_s
    first_hour = int(now // HOUR_S) - hours + 1
    names = [ops.keys.hourly_outcomes(first_hour + i) for i in range(hours)]
    sums: dict[str, list[dict[str, float]]] = {}
    for hour, by_type in enumerate(await read_counts(ops.redis, names)):
        for job_type, values in by_type.items():
            sums.setdefault(job_type, [{} for _ in range(hours)])[hour] = values
    return ChartSeries(
        hours=[datetime.fromtimestamp((first_hour + i) * HOUR_S, UTC) for i in range(hours)],
        types=[_type_series(job_type, sums[job_type]) for job_type in sorted(sums)],
    )


def _type_series(job_type: str, per_hour: list[dict[str, float]]) -> TypeSeries:
    return TypeSeries(
        job_type=job_type,
        done=[int(hour.get("succeeded", 0)) for hour in per_hour],
        failed=[int(sum(hour.get(kind, 0) for kind in FAILURES)) for hour in per_hour],
        retried=[int(hour.get("retried", 0)) for hour in per_hour],
        mean_s=[
            round(hour[RUN_SECONDS] / hour[RUNS], 3) if hour.get(RUNS) else None
            for hour in per_hour
        ],
    )
