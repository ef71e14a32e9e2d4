"""Waiting on a daily run from outside the worker, as an operator's script would."""

import asyncio

from redis.asyncio import Redis

from jobs.keys import Keys
from jobs.models import RunSummary
from jobs.prospecting.runs import RunLedger


async def wait_for_run(
    redis: Redis, run_id: str, timeout_s: float = 120, keys: Keys | None = None
) -> RunSummary:
    """The run's summary once it is complete; fails with the last summary seen on timeout."""
    ledger = RunLedger(redis, keys or Keys())
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (summary := await ledger.summary(run_id)) is None or summary.state != "complete":
        assert asyncio.get_running_loop().time() < deadline, summary
        await asyncio.sleep(0.1)
    return summary
