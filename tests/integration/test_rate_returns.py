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
from worker.scheduling.limits import BOOKING_GAP_MS, BOOKING_LAPSE_MS, Rate, RateLimiter, window_ms

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


async def two_a_second_and_full(redis: Redis) -> RateLimiter:
    """A limiter of 2 LLM requests a second whose window the two it just let through fill."""
    limiter = RateLimiter(redis, KEYS, {"llm": (Rate(2, "s"),)})
    await limiter.acquire("llm")
    await limiter.acquire("llm")
    return limiter


@pytest.mark.slow
@pytest.mark.timeout(30)
async def test_a_slot_booked_for_a_waiter_that_never_returns_lapses(redis: Redis) -> None:
    limiter = await two_a_second_and_full(redis)
    booked = KEYS.rate_booked("llm", "s")
    with pytest.raises(Deferred) as deferred:
        await limiter.acquire("llm")  # its job is deleted meanwhile: it never asks again
    # Two sent this millisecond leave the held window (1.25 s) in at most that long.
    assert 1.0 < deferred.value.delay_s <= 1.251
    assert await redis.zcard(booked) == 1
    assert 0 < await redis.pttl(booked) <= 1251 + BOOKING_LAPSE_MS
    await asyncio.sleep(deferred.value.delay_s + BOOKING_LAPSE_MS / 1000 + 0.05)
    # Past its grace the slot is gone, not taken by the next request as the waiter's.
    await limiter.acquire("llm")
    assert await redis.zcard(booked) == 0
    assert limiter.sent == {"llm": 3} and limiter.deferred == {"llm": 1}


async def test_waiters_are_booked_one_behind_another(redis: Redis) -> None:
    # One a minute: the first goes, the second is booked the slot the first's leaving frees,
    # the third the one after, which the second's request, sent a little late, frees.
    limiter = RateLimiter(redis, KEYS, {"smtp": (Rate(1, "min"),)})
    await limiter.acquire("smtp")
    delays = []
    for _ in range(2):
        with pytest.raises(Deferred) as deferred:
            await limiter.acquire("smtp")
        delays.append(deferred.value.delay_s)
    # The second waiter's slot follows the first's, a window and a grace later.
    window_s = window_ms(60.0) / 1000
    assert window_s - 0.1 < delays[0] <= window_s + 0.001
    assert delays[1] - delays[0] >= window_s + BOOKING_GAP_MS / 1000 - 0.05
    assert await redis.zcard(KEYS.rate_booked("smtp", "min")) == 2
    assert await redis.zcard(KEYS.rate_window("smtp", "min")) == 1


@pytest.mark.slow
@pytest.mark.timeout(30)
async def test_a_waiter_held_up_by_one_that_came_back_late_keeps_its_place(redis: Redis) -> None:
    limiter = await two_a_second_and_full(redis)
    booked = KEYS.rate_booked("llm", "s")
    delays = []
    for _ in range(4):  # two slots as the first two leave, two more a window after those
        with pytest.raises(Deferred) as deferred:
            await limiter.acquire("llm")
        delays.append(deferred.value.delay_s)
    booked_at = time.monotonic()
    # The first two waiters come back 300 ms late (a busy worker), within their slots' lapse.
    await asyncio.sleep(booked_at + delays[0] + 0.3 - time.monotonic())
    await limiter.acquire("llm")
    await limiter.acquire("llm")
    # The third comes back on its slot and finds those two still in the window: it waits for
    # them to leave, keeping its place, rather than being booked behind everyone.
    await asyncio.sleep(booked_at + delays[2] + 0.01 - time.monotonic())
    with pytest.raises(Deferred) as held_up:
        await limiter.acquire("llm")
    assert held_up.value.delay_s < BOOKING_LAPSE_MS / 1000
    assert await redis.zcard(booked) == 2  # its slot, moved, and the fourth's: none added
    await asyncio.sleep(held_up.value.delay_s)
    await limiter.acquire("llm")
    assert limiter.sent == {"llm": 5} and limiter.deferred == {"llm": 5}
