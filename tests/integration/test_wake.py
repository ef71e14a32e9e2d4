"""Fast start on real worker processes, with no clock asserted on: a worker that polls only
every 10 minutes still runs jobs enqueued through the project's enqueuers (the CLI here) within
the test's own bounds of seconds, so the wake-up signal started them; and a plain arq client's
job, which sends no signal, is found by the poll of a worker with a short one."""

import asyncio
import socket
import time
from pathlib import Path

import orjson
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from redis.asyncio import Redis

from tests.conftest import Figures
from tests.integration.conftest import make_settings, make_worker
from tests.support import slow_poll
from tests.support.cli import cli_in_process
from tests.support.processes import WorkerProcess, env_for
from worker.keys import WorkerKeys

KEYS = WorkerKeys()
WAIT_S = 20  # the test's own bound on each job: far below the slow worker's poll
QUEUE = "arq:queue"


async def first_poll_over(redis: Redis) -> bool:
    """A worker's first poll has ended (it writes arq's health key at its end) and its wake-up
    listener is subscribed: from then on, its next poll is its whole poll delay away."""
    health = f"{KEYS.prefix}:health-check:{socket.gethostname()}"
    numsub = dict(await redis.pubsub_numsub(KEYS.wake))
    return bool(await redis.exists(health)) and numsub.get(KEYS.wake, 0) >= 1


async def first_poll_done(redis: Redis, worker: WorkerProcess, timeout_s: float = 30) -> None:
    """Until `first_poll_over`, for a worker process that must stay up meanwhile."""
    deadline = time.monotonic() + timeout_s
    while not await first_poll_over(redis):
        assert worker.running, worker.output()
        assert time.monotonic() < deadline, "the worker never finished its first poll"
        await asyncio.sleep(0.02)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_an_enqueue_wakes_a_worker_between_polls_and_a_plain_client_is_polled(
    redis_url: str, redis: Redis, tmp_path: Path, figures: Figures
) -> None:
    assert slow_poll.POLL_S >= 10 * 3 * WAIT_S  # all three jobs' bounds fit well inside a poll
    env = env_for(redis_url)  # a poll of 0.01 s, for the second worker
    slow = WorkerProcess(
        env, tmp_path / "slow.log", settings="tests.support.slow_poll.WorkerSettings"
    )
    try:
        slow.wait_ready()
        await first_poll_done(redis, slow)
        waits = []
        for _ in range(3):
            done = cli_in_process(
                env, "enqueue", "cleanup", "--wait", "--timeout", str(WAIT_S), "--json"
            )
            # It ran at all: only the wake-up could have started it before the next poll.
            assert done.returncode == 0, done.stdout + done.stderr
            job_id = orjson.loads(done.stdout)["job_id"]
            record = orjson.loads(await redis.get(f"arq:result:{job_id}"))
            assert record["s"] is True
            waits.append((record["st"] - record["et"]) / 1000)
        assert "cleanup" in slow.output()  # the slow worker ran them, not another process
    finally:
        slow.terminate()

    # A plain arq client publishes nothing: its job is found by a worker's poll.
    polling = WorkerProcess(env, tmp_path / "polling.log")
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )
    try:
        polling.wait_ready()
        plain = await pool.enqueue_job("cleanup")
        assert plain is not None
        assert await plain.result(timeout=WAIT_S, poll_delay=0.05) is not None
    finally:
        await pool.aclose()
        polling.terminate()
    figures(
        "fast start",
        slow_poll_s=slow_poll.POLL_S,
        woken_start_s=[round(w, 3) for w in waits],
    )


@pytest.mark.timeout(60)
async def test_the_wake_up_starts_a_job_arq_scored_this_very_millisecond(
    redis_url: str, redis: Redis
) -> None:
    """arq scores a job at the time in ms *rounded*: in the second half of a millisecond, the
    next one. The wake-up read the due head with the time truncated, so a job enqueued less than
    a millisecond before was "not due yet" and waited for the next poll (1 idle start in 100 to
    300 in the scheduling benchmark). Here the read happens inside that half millisecond, with a
    poll 10 minutes away: only the wake-up's own read can start the job."""
    worker = make_worker(make_settings(redis_url), burst=False)
    worker.poll_delay_s = slow_poll.POLL_S
    running = asyncio.create_task(worker.main())
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )
    try:
        while not await first_poll_over(redis):  # noqa: ASYNC110 - state in Redis, no event
            await asyncio.sleep(0.01)
        job = await pool.enqueue_job("cleanup")
        assert job is not None
        # Busy-wait (the loop blocked, so nothing else reads the queue meanwhile) into the
        # second half of the millisecond before `score`: arq's rounded time is `score` there,
        # the truncated one `score - 1`. A machine that stalls past that window (another
        # process took the core) gets a new score and another try.
        for _ in range(20):
            score = int(time.time() * 1000) + 50  # well after the round trip that sets it
            await pool.zadd(QUEUE, {job.job_id: score}, xx=True)
            while (now_ms := time.time() * 1000) < score - 0.45:
                pass
            if now_ms < score - 0.15:
                break
        assert now_ms < score - 0.15, "the machine stalled past the window in 20 tries"
        await worker._start_now()  # what a wake-up message runs  # noqa: SLF001
        assert await job.result(timeout=WAIT_S, poll_delay=0.01) is not None
    finally:
        await pool.aclose()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await worker.close()
