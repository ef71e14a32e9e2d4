"""How the jobs a rate limit defers come back: one by one as the window frees, not as a herd
that is mostly refused again (issue 19). Callers here stand in for jobs: a refused one waits
out its deferral, as the queue holds a deferred job, and asks again."""

import asyncio
import time

import pytest
from redis.asyncio import Redis

from jobs.errors import Deferred
from tests.conftest import Figures
from worker.keys import WorkerKeys
from worker.scheduling.limits import Rate, RateLimiter

KEYS = WorkerKeys()


async def send_all(limiter: RateLimiter, service: str, callers: int) -> tuple[list[float], int]:
    """Every caller's request let through at last: when each went (monotonic), and how many
    times the callers were refused on the way."""
    sent_at: list[float] = []
    refusals = 0

    async def caller() -> None:
        nonlocal refusals
        while True:
            try:
                await limiter.acquire(service)
            except Deferred as deferral:
                refusals += 1
                await asyncio.sleep(deferral.delay_s)  # the queue holds the job this long
                continue
            sent_at.append(time.monotonic())
            return

    await asyncio.gather(*(caller() for _ in range(callers)))
    return sorted(sent_at), refusals


def most_in(times: list[float], span_s: float) -> int:
    return max(
        sum(1 for other in times[i:] if other - start < span_s) for i, start in enumerate(times)
    )


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_waiting_callers_come_back_one_by_one_not_as_a_herd(
    redis: Redis, figures: Figures
) -> None:
    # 40 callers against 10 a second: 10 go at once, the other 30 wait. As a herd (each
    # told "when the oldest leaves the window"), every round let 10 through and refused the
    # rest again: 30 + 20 + 10 = 60 refusals, growing with the callers squared.
    callers, per_s = 40, 10
    limiter = RateLimiter(redis, KEYS, {"llm": (Rate(per_s, "s"),)})
    sent_at, refusals = await send_all(limiter, "llm", callers)
    figures(
        "rate limit returns",
        callers=callers,
        limit_per_s=per_s,
        refusals=refusals,
        most_in_1s=most_in(sent_at, 1.0),
        span_s=round(sent_at[-1] - sent_at[0], 2),
    )
    assert len(sent_at) == callers and limiter.sent == {"llm": callers}
    assert most_in(sent_at, 1.0) <= per_s  # never over the limit
    # Each waiter is refused about once: it comes back when a slot is there for it.
    assert refusals <= callers
