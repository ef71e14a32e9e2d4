"""What one `run` changed in Redis: counts read from Redis itself before and after the run, so
the summary is this run's, whatever earlier runs left in the server."""

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from worker.cli.output import table
from worker.cli.render import render_report
from worker.client import JobReport
from worker.keys import WorkerKeys


@dataclass(frozen=True)
class Counts:
    approvals: int
    contacted: int
    events: int
    dead_letters: int
    quotas: dict[str, int] = field(default_factory=dict)  # quota key -> drafts counted


async def read_counts(redis: Redis, keys: WorkerKeys) -> Counts:
    # Every day's quota counter (one key per day), since the run's day is known only after it.
    quota_keys = sorted([key async for key in redis.scan_iter(match=keys.quota("*"), count=1000)])
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.approvals)
        pipe.scard(keys.contacted)
        pipe.xlen(keys.events)
        pipe.xlen(keys.dead_letters)
        for key in quota_keys:
            pipe.get(key)
        approvals, contacted, events, dead, *quotas = await pipe.execute()
    return Counts(
        approvals=approvals,
        contacted=contacted,
        events=events,
        dead_letters=dead,
        quotas={key: int(value or 0) for key, value in zip(quota_keys, quotas, strict=True)},
    )


def this_runs_changes(before: Counts, after: Counts) -> dict[str, int]:
    quota = sum(after.quotas.values()) - sum(before.quotas.values())
    return {
        "approval stream entries": after.approvals - before.approvals,
        "drafts counted against the day's quota": quota,
        "companies marked contacted": after.contacted - before.contacted,
        "tracking events": after.events - before.events,
        "dead letters": after.dead_letters - before.dead_letters,
    }


def render_outcome(
    report: JobReport,
    changes: dict[str, int],
    *,
    quota_before: int,
    daily_limit: int,
    elapsed_s: float,
) -> str:
    """The report of a run that did something, or of one that found the day's run done (its
    note says the figures are that run's); one line for a run that found nothing to do."""
    result: dict[str, Any] = report.result if isinstance(report.result, dict) else {}
    run_id = result.get("run_id", "today")
    if report.note is not None:  # the day's run was done already: its figures, marked so
        head = render_report(report)
    elif report.state == "complete" and not any(changes.values()):
        if quota_before >= daily_limit:
            head = f"nothing to do: the quota of {run_id} ({daily_limit}) is already spent"
        else:
            head = (
                f"nothing to do: no new draft for {run_id} ({quota_before} of {daily_limit} "
                "already queued; no prospect left to contact)"
            )
    else:
        head = render_report(report)
    rows = [(label, f"{value:+d}") for label, value in changes.items()]
    return (
        f"{head}\nthis run's changes in Redis:\n{table(rows, indent='  ')}\n"
        f"enqueue to end: {elapsed_s:.2f} s"
    )
