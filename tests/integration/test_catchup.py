"""The daily run catches up: workers that start after today's tick run the missed run once,
however many start and however often they restart (real worker processes)."""

import asyncio
from pathlib import Path

import pytest
from arq.utils import to_unix_ms
from redis.asyncio import Redis

from tests.conftest import Figures
from tests.support.missed_tick import missed_tick_env
from tests.support.processes import WorkerProcess
from tests.support.runs import wait_for_run

CAUGHT_UP = "today's daily run was missed"


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_workers_started_after_the_tick_run_the_missed_run_once(
    redis_url: str, redis: Redis, tmp_path: Path, figures: Figures
) -> None:
    tick, env = missed_tick_env(redis_url, daily_limit=5)
    workers = [WorkerProcess(env, tmp_path / f"worker-{n}.log") for n in (1, 2)]
    try:
        for worker in workers:
            worker.wait_ready()
        summary = await wait_for_run(redis, tick.date().isoformat(), timeout_s=60)
        # A replica that restarts later the same day finds the run done: no second one.
        workers[0].restart()
        workers[0].wait_ready()
        await asyncio.sleep(0.5)  # a second run, were one enqueued, would be queued by now
        runs = [key async for key in redis.scan_iter("arq:result:cron:daily_prospect_queue:*")]
        queued = await redis.zcard("arq:queue")
    finally:
        for worker in workers:
            worker.terminate()
    caught_up = sum(worker.output().count(CAUGHT_UP) for worker in workers)
    figures("catch-up", starts=3, runs=len(runs), caught_up_logs=caught_up, queued=summary.queued)
    assert runs == [f"arq:result:cron:daily_prospect_queue:{to_unix_ms(tick)}"]
    assert caught_up == 1
    assert summary.state == "complete" and summary.queued == 5
    assert queued == 0
