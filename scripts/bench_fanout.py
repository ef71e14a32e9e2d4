"""Fan-out benchmark: enqueue N jobs with arq's enqueue_job (one call per job) and with the
worker's bulk Lua enqueuer, side by side in interleaved rounds on a throwaway redis-server.
Also times the whole offline pipeline (daily run, 75 prospects) end to end.

    .venv/bin/python scripts/bench_fanout.py [--jobs 10000] [--rounds 5]

Prints medians per method and the ratio; machines here are noisy, so compare within one run.
"""

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker, get_kwargs
from redis.asyncio import Redis

from jobs.deps import FanoutJob
from settings import Settings
from worker.app import worker_settings
from worker.client import QueueClient
from worker.engine.serializer import deserialize, serialize
from worker.local.embedded import free_port, redis_server
from worker.registry import job_specs
from worker.scheduling.fanout import BulkEnqueuer

PAYLOAD = {
    "run_id": "2026-11-22",
    "rank": 1,
    "company": {"id": "cmp", "name": "Bench Co", "domain": "bench.example"},
}


async def arq_one_by_one(url: str, n: int, tag: str) -> float:
    pool = await create_pool(
        RedisSettings.from_dsn(url), job_serializer=serialize, job_deserializer=deserialize
    )
    start = time.perf_counter()
    for i in range(n):
        await pool.enqueue_job("process_prospect", PAYLOAD, _job_id=f"{tag}:{i}")
    elapsed = time.perf_counter() - start
    await pool.aclose()
    return elapsed


async def bulk(url: str, n: int, tag: str) -> float:
    redis = Redis.from_url(url, decode_responses=True)
    enqueuer = BulkEnqueuer(
        redis, queue_name="arq:queue", serializer=serialize, expires_ms=86_400_000
    )
    jobs = [
        FanoutJob(f"{tag}:{i}", "process_prospect", PAYLOAD, f"pw:inflight:{tag}:{i}")
        for i in range(n)
    ]
    start = time.perf_counter()
    outcomes = await enqueuer.enqueue_many(jobs)
    elapsed = time.perf_counter() - start
    assert outcomes.count("added") == n
    await redis.aclose()
    return elapsed


async def pipeline(url: str) -> tuple[float, int]:
    """One daily run on the sample data, enqueue to the last prospect's tally."""
    settings = Settings(REDIS_URL=url, metrics_port=0)
    client = await QueueClient.connect(settings, specs=job_specs(settings))
    worker = Worker(
        **{
            **get_kwargs(worker_settings(settings)),
            "burst": True,
            "handle_signals": False,
            "poll_delay": 0.01,
        }
    )
    start = time.perf_counter()
    job_id = await client.enqueue("daily_prospect_queue")
    await worker.main()
    elapsed = time.perf_counter() - start
    report = await client.report(job_id)
    await worker.close()
    await client.close()
    assert report.run is not None and report.run.state == "complete"
    return elapsed, report.run.total


async def main(n: int, rounds: int) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed on PATH")
    with redis_server(binary, free_port()) as server:
        flush = Redis.from_url(server.url)
        times: dict[str, list[float]] = {"arq enqueue_job, one call per job": [], "bulk Lua": []}
        for r in range(rounds):
            for name, method in (
                ("arq enqueue_job, one call per job", arq_one_by_one),
                ("bulk Lua", bulk),
            ):
                await flush.flushall()
                times[name].append(await method(server.url, n, f"r{r}"))
        runs = []
        for _ in range(rounds):
            await flush.flushall()
            runs.append(await pipeline(server.url))
        await flush.aclose()

    print(f"enqueue {n} jobs, {rounds} interleaved rounds, median (min-max):")
    medians = {}
    for name, samples in times.items():
        medians[name] = statistics.median(samples)
        print(
            f"  {name:36s} {medians[name]:7.3f} s  ({min(samples):.3f}-{max(samples):.3f})"
            f"  {n / medians[name]:9.0f} jobs/s"
        )
    ratio = medians["arq enqueue_job, one call per job"] / medians["bulk Lua"]
    print(f"  bulk is {ratio:.1f}x faster")
    seconds = statistics.median(t for t, _ in runs)
    prospects = runs[0][1]
    print(
        f"offline pipeline: {prospects} prospects end to end, median {seconds:.3f} s "
        f"({prospects / seconds:.0f} prospects/s) over {rounds} runs"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.rounds))
