"""Job outcomes per type and minute, across replicas, kept in Redis for two days: what the
console charts (jobs and failures per hour, processing time) and `stats` read without
Prometheus.

One hash per minute (`WorkerKeys.outcomes`, unix time // 60): `<job type>:<outcome>` -> count,
`<job type>:run_s` -> seconds the bodies ran, `<job type>:runs` -> the outcomes those seconds
belong to (a job arq failed before its body ran has no duration). Each replica tallies in memory
as jobs end and the sampler adds its tally to the minute it publishes in, on the round trip it
already makes once per refresh (worker/observability/replicas.py): a job pays no Redis call for
it, and a minute's figures are late by at most one refresh.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from worker.keys import WorkerKeys
from worker.runtime.outcomes import OUTCOME_KINDS, OutcomeKind

BUCKET_S = 60
# Two days of charts and an hour to spare, so the oldest hour shown is whole.
BUCKET_TTL_S = 49 * 3600
RUN_SECONDS = "run_s"
RUNS = "runs"


@dataclass
class Tally:
    """Outcomes counted in this process since the last publish."""

    counts: Counter[tuple[str, OutcomeKind]] = field(default_factory=Counter)
    run_s: dict[str, float] = field(default_factory=dict)  # job type -> seconds its bodies ran
    runs: Counter[str] = field(default_factory=Counter)  # job type -> outcomes with a duration

    def add(self, job_type: str, kind: OutcomeKind, duration_s: float | None) -> None:
        self.counts[(job_type, kind)] += 1
        if duration_s is not None:
            self.run_s[job_type] = self.run_s.get(job_type, 0.0) + max(0.0, duration_s)
            self.runs[job_type] += 1

    def merge(self, other: "Tally") -> None:
        self.counts.update(other.counts)
        self.runs.update(other.runs)
        for job_type, seconds in other.run_s.items():
            self.run_s[job_type] = self.run_s.get(job_type, 0.0) + seconds

    def __bool__(self) -> bool:
        return bool(self.counts)


def queue_tally(pipe: Pipeline, keys: WorkerKeys, tally: Tally, *, now_s: float) -> None:
    """Queue on `pipe` the increments of the minute `now_s` falls in."""
    if not tally:
        return
    bucket = keys.outcomes(int(now_s // BUCKET_S))
    for (job_type, kind), count in tally.counts.items():
        pipe.hincrby(bucket, f"{job_type}:{kind}", count)
    for job_type, seconds in tally.run_s.items():
        pipe.hincrbyfloat(bucket, f"{job_type}:{RUN_SECONDS}", seconds)
    for job_type, runs in tally.runs.items():
        pipe.hincrby(bucket, f"{job_type}:{RUNS}", runs)
    pipe.expire(bucket, BUCKET_TTL_S)


@dataclass(frozen=True)
class MinuteFigures:
    """One minute, every replica: job type -> outcome (or run_s / runs) -> value."""

    minute: int  # unix time // 60
    by_type: dict[str, dict[str, float]]


async def read_minutes(
    redis: Redis, keys: WorkerKeys, minutes: Sequence[int]
) -> list[MinuteFigures]:
    """The figures of each minute asked for, in one round trip (a minute nobody wrote is empty)."""
    async with redis.pipeline(transaction=False) as pipe:
        for minute in minutes:
            pipe.hgetall(keys.outcomes(minute))
        replies = await pipe.execute()
    found = []
    for minute, raw in zip(minutes, replies, strict=True):
        by_type: dict[str, dict[str, float]] = {}
        for name, value in raw.items():
            job_type, _, what = _text(name).rpartition(":")
            by_type.setdefault(job_type, {})[what] = float(value)
        found.append(MinuteFigures(minute=minute, by_type=by_type))
    return found


def outcome_counts(figures: Sequence[MinuteFigures]) -> dict[str, dict[str, int]]:
    """The outcomes summed over the minutes: job type -> outcome -> count."""
    totals: dict[str, dict[str, int]] = {}
    for minute in figures:
        for job_type, values in minute.by_type.items():
            for kind, value in values.items():
                if kind in OUTCOME_KINDS:
                    per_type = totals.setdefault(job_type, {})
                    per_type[kind] = per_type.get(kind, 0) + int(value)
    return totals


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
