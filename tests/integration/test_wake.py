"""Fast start on real worker processes: a job enqueued through the project's enqueuers wakes an
idle worker at once (its poll here is 3 s), and a plain arq client's job is still found by the
poll."""

import time
from pathlib import Path

import orjson
from arq import create_pool
from arq.connections import RedisSettings
from redis.asyncio import Redis

from tests.conftest import Figures
from tests.support.processes import WorkerProcess, env_for, run_cli

POLL_S = 3.0


async def test_an_enqueue_wakes_an_idle_worker_and_a_plain_client_is_polled(
    redis_url: str, redis: Redis, tmp_path: Path, figures: Figures
) -> None:
    env = env_for(redis_url, PW_POLL_DELAY_S=str(POLL_S))
    worker = WorkerProcess(env, tmp_path / "worker.log")
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )
    try:
        worker.wait_ready()
        waits = []
        for _ in range(3):
            done = run_cli(env, "enqueue", "cleanup", "--wait", "--timeout", "20", "--json")
            assert done.returncode == 0, done.stderr
            record = orjson.loads(
                await redis.get(f"arq:result:{orjson.loads(done.stdout)['job_id']}")
            )
            waits.append((record["st"] - record["et"]) / 1000)
        plain = await pool.enqueue_job("cleanup")
        assert plain is not None
        began = time.monotonic()
        await plain.result(timeout=3 * POLL_S, poll_delay=0.05)
        plain_s = time.monotonic() - began
    finally:
        await pool.aclose()
        worker.terminate()
    figures(
        "fast start",
        poll_s=POLL_S,
        woken_start_s=[round(w, 3) for w in waits],
        plain_s=round(plain_s, 3),
    )
    # Woken, not polled: each started well inside one poll interval.
    assert max(waits) < POLL_S / 2
