"""Job outcomes per type and minute, across replicas, kept in Redis for two days: what the
console charts (jobs and failures per hour, processing time) and `stats` read without
Prometheus.

One hash per minute (`WorkerKeys.outcomes`, unix time // 60): `<job type>:<outcome>` -> count,
`<job type>:run_s` -> seconds the bodies ran, `<job type>:runs` -> the outcomes those seconds
belong to (a job arq failed before its body ran has no duration); and the same per hour
(`WorkerKeys.hourly_outcomes`), written beside it, so two days of charts read 48 small hashes
(2,880 minutes took half a second to read and parse: scripts/bench_console.py). Each replica
tallies in memory as jobs end and the sampler adds its tally to the minute and hour it
publishes in, on the round trip it already makes once per refresh
(worker/observability/replicas.py): a job pays no Redis call for it, and the figures are late by
at most one refresh.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from worker.keys import WorkerKeys
from worker.runtime.outcomes import OUTCOME_KINDS, OutcomeKind

BUCKET_S = 60
HOUR_S = 3600
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
    minute, hour = keys.outcomes(int(now_s // BUCKET_S)), keys.hourly_outcomes(int(now_s // HOUR_S))
    for bucket in (minute, hour):
        for (job_type, kind), count in tally.counts.items():
            pipe.hincrby(bucket, f"{job_type}:{kind}", count)
        for job_type, seconds in tally.run_s.items():
            pipe.hincrbyfloat(bucket, f"{job_type}:{RUN_SECONDS}", seconds)
        for job_type, runs in tally.runs.items():
            pipe.hincrby(bucket, f"{job_type}:{RUNS}", runs)
        pipe.expire(bucket, BUCKET_TTL_S)


async def read_counts(redis: Redis, names: Sequence[str]) -> list[dict[str, dict[str, float]]]:
    """The hashes named (minutes or hours), in one round trip: for each, job type -> outcome
    (or run_s / runs) -> value; empty for one nobody wrote."""
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(name)
        replies = await pipe.execute()
    found = []
    for raw in replies:
        by_type: dict[str, dict[str, float]] = {}
        for name, value in raw.items():
            job_type, _, what = _text(name).rpartition(":")
            by_type.setdefault(job_type, {})[what] = float(value)
        found.append(by_type)
    return found


def summed(counts: Sequence[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    total: dict[str, dict[str, float]] = {}
    for by_type in counts:
        for job_type, values in by_type.items():
            per_type = total.setdefault(job_type, {})
            for what, value in values.items():
                per_type[what] = per_type.get(what, 0.0) + value
    return total


def outcome_counts(by_type: dict[str, dict[str, float]]) -> dict[str, dict[str, int]]:
    """The outcomes alone of a sum: job type -> outcome -> count."""
    counts: dict[str, dict[str, int]] = {}
    for job_type, values in by_type.items():
        for kind, value in values.items():
            if kind in OUTCOME_KINDS:
                counts.setdefault(job_type, {})[kind] = int(value)
    return counts


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
