"""Real processes: `arq worker.WorkerSettings`, a plain arq client, the CLI, cron on replicas."""

import asyncio
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from redis.asyncio import Redis

from jobs.keys import Keys
from tests.support.processes import ROOT, WorkerProcess, env_for
from tests.support.runs import wait_for_run

from .conftest import make_settings, make_worker

KEYS = Keys()


@pytest.mark.slow
async def test_a_plain_arq_client_triggers_a_run_on_a_running_worker(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    worker = WorkerProcess(env_for(redis_url), tmp_path / "worker.log")
    try:
        pool = await create_pool(
            RedisSettings.from_dsn(redis_url),
            job_serializer=orjson.dumps,
            job_deserializer=orjson.loads,
        )
        job = await pool.enqueue_job("daily_prospect_queue")
        assert job is not None
        result = await job.result(timeout=120, poll_delay=0.1)
        await pool.aclose()
        assert result["fanned_out"] > 0
        await wait_for_run(redis, result["run_id"])
        assert await redis.xlen(KEYS.approvals) == 50
    finally:
        code, output = worker.stop()
    assert code == 0, output
    assert "prospect-worker ready" in output


@pytest.mark.slow
async def test_one_cron_run_per_tick_with_two_workers(redis_url: str, redis: Redis) -> None:
    settings = make_settings(redis_url)
    # arq fixes a cron's next run at the worker's first poll: a tick already past by then waits
    # for tomorrow. 5 s leaves room for a slow start on a loaded machine (2 s was missed).
    tick = (datetime.now(settings.tz) + timedelta(seconds=5)).replace(microsecond=0)
    settings = settings.model_copy(update={"daily_run_at": tick.time()})
    workers = [make_worker(settings, burst=False) for _ in range(2)]
    tasks = [asyncio.create_task(worker.main()) for worker in workers]
    try:
        run_id = tick.date().isoformat()
        await wait_for_run(redis, run_id, timeout_s=60)
        # Stop as burst workers do: once the queue is empty and the jobs in flight have ended.
        # Cancelling a polling worker could cut a job or a Redis pipeline off mid-call.
        for worker in workers:
            worker.burst = True
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in workers:
            await worker.close()
    cron_results = [key async for key in redis.scan_iter("arq:result:cron:daily_prospect_queue:*")]
    assert len(cron_results) == 1
    assert sum(worker.jobs_complete for worker in workers) >= 2
    assert await redis.xlen(KEYS.approvals) == settings.daily_limit


@pytest.mark.slow
def test_arq_check_reports_a_running_worker_and_fails_once_it_stopped(
    redis_url: str, tmp_path: Path
) -> None:
    env = {**env_for(redis_url), "PW_RECOVERY__HEALTH_INTERVAL_S": "1"}
    worker = WorkerProcess(env, tmp_path / "worker.log")
    check = [sys.executable, "-m", "arq", "--check", "worker.WorkerSettings"]
    try:
        deadline = time.monotonic() + 30
        while (
            alive := subprocess.run(check, check=False, cwd=ROOT, env=env, capture_output=True)
        ).returncode:
            assert time.monotonic() < deadline, alive.stderr
            time.sleep(0.2)
    finally:
        code, output = worker.stop()
    assert code == 0, output
    stopped = subprocess.run(check, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    assert stopped.returncode == 1
    assert "Health check failed" in stopped.stderr
