"""Queue depth without a full scan: exact totals, and the split by job type from a bounded sample.

arq keeps the queue as one sorted set scored by the time a job becomes runnable, so the totals
are exact and cheap whatever the queue's size: due jobs are the members scored up to now (ZCOUNT)
and the oldest due job is the lowest score. The job type lives only in each job's own key, so
the split by type reads at most `sample_size` members per state (due, scheduled): all of them
when there are that few (exact), else members at evenly spread ranks across the state's range
(a stratified sample, so old and new jobs both count), scaled to the exact total. The same
members' priority class is read from the shift kept beside each job (`WorkerKeys.priority`, see
worker/scheduling/queueorder.py; none kept: the maintenance level), in the same read as their
records.
Cost per refresh: three round trips (one a script that picks the sampled members) and at most
4 * sample_size small reads, never O(queue).
"""

from collections import Counter
from collections.abc import Collection, Hashable, Sequence
from typing import TypeVar

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis

from worker.engine.arqjobs import JOB_KEY_PREFIX
from worker.keys import WorkerKeys
from worker.observability.metrics import QUEUE_STATES
from worker.runtime.outcomes import UNKNOWN_FUNCTION
from worker.scheduling.queueorder import PriorityScale

SAMPLE_SIZE = 200

# KEYS: the queue. ARGV, per state: 'range', first rank, last rank (nothing when last < first),
# or 'ranks', how many, then the ranks. Returns the members of each state, in order.
_MEMBERS = """
local out, i = {}, 1
while i <= #ARGV do
  local members = {}
  if ARGV[i] == 'range' then
    local first, last = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    if last >= first then members = redis.call('ZRANGE', KEYS[1], first, last) end
    i = i + 3
  else
    local n = tonumber(ARGV[i + 1])
    for j = i + 2, i + 1 + n do
      local found = redis.call('ZRANGE', KEYS[1], ARGV[j], ARGV[j])
      if found[1] then members[#members + 1] = found[1] end
    end
    i = i + 2 + n
  end
  out[#out + 1] = members
end
return out
"""
K = TypeVar("K", bound=Hashable)


class QueueFigures(BaseModel):
    due: int
    scheduled: int
    # state ("due" / "scheduled") -> job type -> jobs; sums to the exact total of each state
    by_type: dict[str, dict[str, int]]
    # state -> job type -> priority class -> jobs; the same jobs as by_type, split by class
    by_priority: dict[str, dict[str, dict[str, int]]]
    oldest_due_age_s: float
    exact: bool  # every member was read, so the split by type is a count, not an estimate
    # job type -> its jobs parked while the type is at its limit (exact; also in `scheduled`)
    parked: dict[str, int] = {}


def sample_ranks(start: int, count: int, size: int) -> list[int]:
    """`size` ranks spread evenly over [start, start + count), each in the middle of its stratum."""
    return [start + (2 * i + 1) * count // (2 * size) for i in range(size)]


def scale(sample: Counter[K], total: int) -> dict[K, int]:
    """Scale sampled counts to `total`, rounding so the parts still sum to it (largest
    remainder)."""
    seen = sum(sample.values())
    if not seen or not total:
        return {}
    shares = {name: count * total / seen for name, count in sample.items()}
    parts = {name: int(share) for name, share in shares.items()}
    left = total - sum(parts.values())
    for name in sorted(shares, key=lambda n: shares[n] - parts[n], reverse=True)[:left]:
        parts[name] += 1
    return parts


def job_type_of(raw: bytes | None, job_types: Collection[str]) -> str:
    """The function name in an arq job record; UNKNOWN_FUNCTION for an expired, unreadable or
    unknown one, so labels stay bounded."""
    if raw is None:
        return UNKNOWN_FUNCTION
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return UNKNOWN_FUNCTION
    name = record.get("f") if isinstance(record, dict) else None
    return name if isinstance(name, str) and name in job_types else UNKNOWN_FUNCTION


def shift_of(raw: bytes | None) -> int | None:
    """A kept shift (ms), or None for none or an unreadable one (the maintenance level)."""
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


async def sample_queue(
    redis: Redis,
    queue_name: str,
    job_types: Collection[str],
    *,
    now_ms: int,
    sample_size: int = SAMPLE_SIZE,
    keys: WorkerKeys | None = None,
    priorities: PriorityScale | None = None,
) -> QueueFigures:
    """`redis` must return bytes: queue members and job records need not be valid UTF-8.
    `keys` and `priorities` name the priority keys and read their shifts (the worker's)."""
    keys, priorities = keys or WorkerKeys(), priorities or PriorityScale()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcount(queue_name, "-inf", now_ms)
        pipe.zcard(queue_name)
        pipe.zrange(queue_name, 0, 0, withscores=True)
        # Jobs parked at their type's limit: counted exactly, on the same round trip.
        parked_types = [t for t in job_types if t != UNKNOWN_FUNCTION]
        for job_type in parked_types:
            pipe.zcard(keys.parked(job_type))
        due, total, first, *parked = await pipe.execute()
    counts = {"due": int(due), "scheduled": max(0, int(total) - int(due))}
    starts = {"due": 0, "scheduled": counts["due"]}
    oldest = max(0.0, (now_ms - first[0][1]) / 1000) if counts["due"] and first else 0.0

    exact = all(counts[state] <= sample_size for state in QUEUE_STATES)
    # Every state's members in one step in Redis: all of them when few, else the sampled ranks
    # (a pipeline of one ZRANGE per rank cost the client more than the reads: 400 commands to
    # pack and parse on every refresh and every console page).
    args: list[int | str] = []
    for state in QUEUE_STATES:
        start, count = starts[state], counts[state]
        if count <= sample_size:
            args += ["range", start, start + count - 1]
        else:
            args += ["ranks", sample_size, *sample_ranks(start, count, sample_size)]
    replies: Sequence[list[bytes]] = await redis.register_script(_MEMBERS)(
        keys=[queue_name], args=args
    )
    members = dict(zip(QUEUE_STATES, replies, strict=True))

    every = [m for state in QUEUE_STATES for m in members[state]]
    # Each member's job record, then its kept shift, in one read.
    names = [JOB_KEY_PREFIX.encode() + m for m in every]
    names += [keys.priority("").encode() + m for m in every]
    read = await redis.mget(names) if every else []
    records, shifts = read[: len(every)], read[len(every) :]
    classes = iter(
        (job_type_of(raw, job_types), priorities.priority_of(shift_of(shift)))
        for raw, shift in zip(records, shifts, strict=True)
    )
    by_type: dict[str, dict[str, int]] = {}
    by_priority: dict[str, dict[str, dict[str, int]]] = {}
    for state in QUEUE_STATES:
        sample = Counter(next(classes) for _ in members[state])
        scaled = scale(sample, counts[state])
        by_type[state], by_priority[state] = {}, {}
        for (job_type, priority), jobs in scaled.items():
            if not jobs:
                continue
            by_type[state][job_type] = by_type[state].get(job_type, 0) + jobs
            by_priority[state].setdefault(job_type, {})[priority] = jobs
    return QueueFigures(
        due=counts["due"],
        scheduled=counts["scheduled"],
        by_type=by_type,
        by_priority=by_priority,
        oldest_due_age_s=oldest,
        exact=exact,
        parked={job_type: int(n) for job_type, n in zip(parked_types, parked, strict=True)},
    )
