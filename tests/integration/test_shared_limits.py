"""Limits shared by every replica, on real processes: two `arq worker.WorkerSettings` workers
against one fake provider never send it more than its limit in any window (counted at the
provider), and a job that meets a limit is deferred without spending a try."""

from pathlib import Path

import orjson
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from redis.asyncio import Redis

from jobs.errors import Deferred
from jobs.prospecting.runs import RunLedger
from tests.conftest import Figures
from tests.support.fake_providers import FakeProviders
from tests.support.faults import FaultPlan
from tests.support.processes import WorkerProcess, env_for
from tests.support.runs import start_daily_run, wait_for_run
from worker.keys import WorkerKeys
from worker.scheduling.limits import Rate, RateLimiter

KEYS = WorkerKeys()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_two_workers_never_send_a_provider_more_than_its_limit(
    redis_url: str, redis: Redis, fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    llm_per_s, finder_per_s = 5, 12
    fake_providers.configure("llm", FaultPlan(latency_s=0.02))
    env = env_for(
        redis_url,
        **fake_providers.env(),
        PW_DAILY_LIMIT="30",
        PW_LLM__REQUESTS_PER_SECOND=str(llm_per_s),
        PW_EMAIL_FINDER__REQUESTS_PER_SECOND=str(finder_per_s),
        PW_EMAIL_FINDER__REQUESTS_PER_MINUTE="600",
    )
    workers = [WorkerProcess(env, tmp_path / f"worker-{n}.log") for n in (1, 2)]
    try:
        for worker in workers:
            worker.wait_ready()
        run_id = await start_daily_run(redis_url)
        summary = await wait_for_run(redis, run_id, timeout_s=150)
    finally:
        for worker in workers:
            worker.terminate()
    far_end = fake_providers.far_end
    llm = far_end.snapshot("llm")
    finder = far_end.snapshot("email_finder")
    busiest_llm = far_end.max_in_window(1.0, "llm")
    busiest_finder = far_end.max_in_window(1.0, "email_finder")
    span_s = llm[-1].arrived - llm[0].arrived
    tries_spent = [key async for key in redis.scan_iter(KEYS.tries("*"))]
    figures(
        "shared rate limits",
        prospects=summary.total,
        queued=summary.queued,
        failed=summary.failed,
        llm_requests=len(llm),
        llm_max_per_s=busiest_llm,
        llm_span_s=round(span_s, 2),
        finder_requests=len(finder),
        finder_max_per_s=busiest_finder,
        tries_spent=len(tries_spent),
    )
    assert summary.state == "complete" and summary.failed == 0 and summary.queued == 30
    # One chat completion per draft, none twice: a prospect that reached the LLM before the
    # quota filled is drafted and then skipped, so drafts may exceed the 30 queued.
    assert len(llm) == summary.drafted >= 30 and len(finder) == summary.total
    # Never over the limit in any one-second window, as the provider counts.
    assert busiest_llm <= llm_per_s
    assert busiest_finder <= finder_per_s
    # The limit was met (so jobs were deferred), and deferring spent no try.
    assert busiest_llm == llm_per_s
    assert tries_spent == []
    assert not await redis.xlen(KEYS.dead_letters)
    # Both replicas worked (the limit is shared, not per process).
    assert all("process_prospect" in worker.output() for worker in workers)


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most of the (start, end) intervals open at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_type_at_its_limit_holds_no_slot_and_leaves_other_types_running(
    redis_url: str, redis: Redis, fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    # The finding: max jobs 10, a prospect limit of 1, a 1 s timeout and an LLM that
    # answers in 0.45 s dead-lettered 7 of 12 prospects while waiters filled every slot. The
    # timeout here is 3 s, so a loaded machine does not time out a run itself; a waiter for
    # the slot would still wait up to 18 x 0.45 s.
    fake_providers.configure("llm", FaultPlan(latency_s=0.45))
    env = env_for(
        redis_url,
        **fake_providers.env(),
        PW_DAILY_LIMIT="12",
        PW_MAX_JOBS="10",
        PW_JOBS__PROCESS_PROSPECT__LIMIT="1",
        PW_JOBS__PROCESS_PROSPECT__TIMEOUT_S="3",
    )
    workers = [WorkerProcess(env, tmp_path / f"worker-{n}.log") for n in (1, 2)]
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )
    try:
        for worker in workers:
            worker.wait_ready()
        run_id = await start_daily_run(redis_url)
        # Another type, enqueued behind the prospects, runs while they wait for their lease.
        cleanups = [await pool.enqueue_job("cleanup") for _ in range(5)]
        for job in cleanups:
            assert job is not None
            await job.result(timeout=30, poll_delay=0.02)
        midway = await RunLedger(redis, KEYS).summary(run_id)
        assert midway is not None
        pending_when_cleanups_ended = midway.total - midway.done
        summary = await wait_for_run(redis, run_id, timeout_s=150)
    finally:
        await pool.aclose()
        for worker in workers:
            worker.terminate()
    llm = fake_providers.far_end.snapshot("llm")
    at_once = most_at_once([(s.arrived, s.answered) for s in llm])
    tries_spent = [key async for key in redis.scan_iter(KEYS.tries("*"))]
    figures(
        "type limit",
        prospects=summary.total,
        queued=summary.queued,
        failed=summary.failed,
        dead_letters=await redis.xlen(KEYS.dead_letters),
        prospects_at_once=at_once,
        prospects_pending_when_cleanups_ended=pending_when_cleanups_ended,
        tries_spent=len(tries_spent),
    )
    assert summary.state == "complete" and summary.failed == 0 and summary.queued == 12
    assert not await redis.xlen(KEYS.dead_letters)
    assert tries_spent == []
    assert at_once == 1  # the limit holds across both replicas
    assert pending_when_cleanups_ended > 0  # the other type did not wait behind the prospects


async def test_the_rate_script_lets_the_limit_through_then_defers_until_a_slot_frees(
    redis: Redis,
) -> None:
    limiter = RateLimiter(redis, KEYS, {"llm": (Rate(3, "s"), Rate(100, "min"))})
    for _ in range(3):
        await limiter.acquire("llm")
    await limiter.acquire("discovery")  # no limit set for it: never deferred
    with pytest.raises(Deferred) as deferred:
        await limiter.acquire("llm")
    assert deferred.value.reason == "rate_limit" and deferred.value.limit == "llm"
    # The oldest of the three leaves the held window (1 s + 250 ms) in at most that long.
    assert 1.0 < deferred.value.delay_s <= 1.251
    assert limiter.sent == {"llm": 3} and limiter.deferred == {"llm": 1}
    # A refused request is not counted in any window: the minute window holds the three only.
    assert await redis.zcard(KEYS.rate_window("llm", "min")) == 3
    assert 0 < await redis.pttl(KEYS.rate_window("llm", "s")) <= 1250
