"""Parking, on real worker processes: a job whose type is at its limit waits parked instead of
being claimed and deferred again and again, comes back in order as leases free, and a worker
killed while jobs are parked strands none of them."""

from pathlib import Path

import orjson
import pytest
from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.jobs import Job, JobStatus
from redis.asyncio import Redis

from jobs.redisreply import reply
from tests.conftest import Figures
from tests.support.fault_env import marker_env
from tests.support.nap_job import NAP_JOB, PEAK, RUNNING, RUNS
from tests.support.processes import WorkerProcess, env_for
from tests.support.until import until
from worker.keys import WorkerKeys
from worker.local.embedded import free_port

from .scrape import scrape_until

KEYS = WorkerKeys()
SETTINGS = "tests.support.nap_job.WorkerSettings"
OUTCOMES = "prospect_worker_job_outcomes_total"
PARKED = "prospect_worker_queue_parked_jobs"


async def arq_pool(redis_url: str) -> ArqRedis:
    return await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )


async def enqueue_naps(pool: ArqRedis, count: int, **payload: object) -> list[Job]:
    jobs = [await pool.enqueue_job(NAP_JOB, {"n": n, **payload}) for n in range(count)]
    assert all(job is not None for job in jobs)
    return [job for job in jobs if job is not None]


async def parked_at_least(redis: Redis, count: int) -> bool:
    return int(await redis.zcard(KEYS.parked(NAP_JOB))) >= count


async def all_complete(jobs: list[Job]) -> bool:
    return all([await job.status() == JobStatus.complete for job in jobs])


def nap_env(redis_url: str, metrics_port: int, *, max_jobs: int, limit: int) -> dict[str, str]:
    """A worker of `max_jobs` slots, the nap type limited to `limit`, sampled for /metrics."""
    return env_for(
        redis_url,
        PW_MAX_JOBS=str(max_jobs),
        PW_JOBS__NAP__LIMIT=str(limit),
        PW_METRICS_PORT=str(metrics_port),
        PW_METRICS_HOST="127.0.0.1",
        PW_METRICS_SAMPLE_S="0.2",
    )


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_full_type_parks_its_jobs_instead_of_claiming_them_again_and_again(
    redis_url: str, redis: Redis, tmp_path: Path, figures: Figures
) -> None:
    """Before: each free slot claimed a job of the full type, deferred it for ~0.5 s and
    claimed it again (176 deferrals in 1.6 s with a limit of 20 and `max_jobs` 50)."""
    port = free_port()
    env = nap_env(redis_url, port, max_jobs=20, limit=4)
    pool = await arq_pool(redis_url)
    jobs = await enqueue_naps(pool, 60, seconds=0.1)
    worker = WorkerProcess(env, tmp_path / "worker.log", settings=SETTINGS)
    try:
        worker.wait_ready()
        await until(lambda: all_complete(jobs), timeout_s=60)
        metrics = await scrape_until(
            port, lambda s: s.total(OUTCOMES, job_type=NAP_JOB, outcome="succeeded") == 60
        )
    finally:
        worker.terminate()
        await pool.aclose()
    runs = {int(n): int(count) for n, count in (await reply(redis.hgetall(RUNS))).items()}
    deferred = metrics.total(OUTCOMES, job_type=NAP_JOB, outcome="deferred")
    figures(
        "parking",
        jobs=60,
        deferrals=int(deferred),
        deferrals_per_job=round(deferred / 60, 3),
        most_running_at_once=int(await redis.get(PEAK)),
    )
    assert runs == dict.fromkeys(range(60), 1)  # every job ran to its end, once
    assert int(await redis.get(PEAK)) == 4  # the limit held, and was used
    assert deferred / 60 <= 0.05
    assert metrics.total(OUTCOMES, job_type=NAP_JOB, outcome="retried") == 0
    assert not await redis.exists(KEYS.parked(NAP_JOB))  # nothing left waiting


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_worker_killed_with_jobs_parked_strands_none_of_them(
    redis_url: str, redis: Redis, tmp_path: Path, figures: Figures
) -> None:
    gate = "test:nap:gate"
    env = env_for(redis_url, PW_MAX_JOBS="20", PW_JOBS__NAP__LIMIT="4", **marker_env(3.0, 1.0))
    pool = await arq_pool(redis_url)
    jobs = await enqueue_naps(pool, 30, gate=gate)
    first = WorkerProcess(env, tmp_path / "first.log", settings=SETTINGS)
    second = WorkerProcess(env, tmp_path / "second.log", settings=SETTINGS, start=False)
    try:
        first.wait_ready()
        # Four hold the type's leases (behind the closed gate); the rest wait parked.
        await until(lambda: parked_at_least(redis, 26), timeout_s=30)
        assert await redis.zcard(KEYS.type_leases(NAP_JOB)) == 4
        parked_id = (await redis.zrange(KEYS.parked(NAP_JOB), 0, 0))[0]
        # arq's Job API reads a parked job as deferred (it is in arq's queue, not yet due).
        assert await Job(parked_id, pool).status() == JobStatus.deferred
        first.kill()
        # The killed worker's naps never passed the gate; count the second worker's alone.
        await redis.delete(RUNNING, PEAK)
        await redis.set(gate, "open")
        second.start()
        second.wait_ready()
        await until(lambda: all_complete(jobs), timeout_s=60)
    finally:
        if second.running:
            second.terminate()
        first.kill()
        await pool.aclose()
    runs = {int(n): int(count) for n, count in (await reply(redis.hgetall(RUNS))).items()}
    figures("parking after a SIGKILL", jobs=30, parked_at_the_kill=26)
    assert runs == dict.fromkeys(range(30), 1)  # each ran to its end exactly once
    assert int(await redis.get(PEAK)) <= 4
    assert not await redis.exists(KEYS.parked(NAP_JOB))


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_the_metrics_port_shows_how_many_jobs_wait_parked_per_type(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    gate, port = "test:nap:gate", free_port()
    env = nap_env(redis_url, port, max_jobs=10, limit=2)
    pool = await arq_pool(redis_url)
    jobs = await enqueue_naps(pool, 12, gate=gate)
    worker = WorkerProcess(env, tmp_path / "worker.log", settings=SETTINGS)
    try:
        worker.wait_ready()
        # Two hold the type's leases behind the closed gate; the other ten wait parked.
        await until(lambda: parked_at_least(redis, 10), timeout_s=30)
        held = await scrape_until(port, lambda s: s.total(PARKED, job_type=NAP_JOB) == 10)
        await redis.set(gate, "open")
        await until(lambda: all_complete(jobs), timeout_s=60)
        after = await scrape_until(port, lambda s: s.total(PARKED, job_type=NAP_JOB) == 0)
    finally:
        worker.terminate()
        await pool.aclose()
    assert held.value(PARKED, job_type=NAP_JOB) == 10
    assert after.value(PARKED, job_type=NAP_JOB) == 0
