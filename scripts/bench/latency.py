"""Case `latency`: start latency, idle and behind a backlog, raw arq and pw side by side.

- idle: an idle worker's own CPU (/proc) and the Redis commands per second (INFO stats, less the
  benchmark's own calls) over a quiet spell; then jobs enqueued one at a time (20-80 ms apart,
  waiting for each). Medians of the interleaved rounds.
- backlog (scripts/bench/backlog.py): a reply's start with prospect jobs queued ahead of it and
  the worker draining them for real; replies through `QueueClient.enqueue(priority="reply")`.

Start latency: the start time in arq's result record less the enqueue time in its job record
(ms). raw arq: scripts/bench/arq_app.py (plain arq, orjson, poll 0.05 s); pw: `arq
worker.WorkerSettings` (poll 0.05 s, its default), jobs enqueued with the project's client,
which publishes the wake-up signal.

Targets (issue 19): idle start p50 <= 3 ms, p99 <= 10 ms; a reply behind 10,000 queued p99 <=
100 ms.
"""

import asyncio
import os
import random
import statistics
import time
from pathlib import Path

from redis.asyncio import Redis

from scripts.bench import backlog
from scripts.bench.context import Context
from scripts.bench.processes import READY_S, arq_pool, pct, result_of, worker
from scripts.bench.report import Table
from settings import Settings
from worker.client import QueueClient
from worker.registry import job_specs

# (jobs per round, idle seconds measured, backlog, pw replies, arq samples, jobs at once)
SIZES = {
    "full": (300, 10.0, 10_000, 100, 1, 20),
    "quick": (100, 3.0, 2_000, 30, 1, 20),
    "tiny": (5, 0.5, 40, 3, 1, 20),
}


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def commands(redis: Redis) -> int:
    return int((await redis.info("stats"))["total_commands_processed"])


async def measure_idle(kind: str, url: str, jobs: int, idle_s: float) -> dict[str, float]:
    redis = Redis.from_url(url)
    await redis.flushall()
    process = worker(kind, url, f"idle-{kind}")
    client = (
        await QueueClient.connect(settings := Settings(REDIS_URL=url), specs=job_specs(settings))
        if kind == "pw"
        else None
    )
    pool = await arq_pool(url)
    try:
        process.wait_ready(READY_S)
        await asyncio.sleep(2)  # past start-up
        pid = process.process.pid
        cpu0, ops0, t0 = cpu_s(pid), await commands(redis), time.monotonic()
        await asyncio.sleep(idle_s)
        cpu1, ops1, t1 = cpu_s(pid), await commands(redis), time.monotonic()
        latencies: list[float] = []
        for _ in range(jobs):
            await asyncio.sleep(random.uniform(0.02, 0.08))
            if client is not None:
                job_id = await client.enqueue("cleanup")
            else:
                job = await pool.enqueue_job("cleanup")
                assert job is not None
                job_id = job.job_id
            record = await result_of(redis, job_id)
            latencies.append(record["st"] - record["et"])
    finally:
        if client is not None:
            await client.close()
        await pool.aclose()
        await redis.aclose()
        process.terminate()
    span = t1 - t0
    return {
        "idle CPU (% of a core)": 100 * (cpu1 - cpu0) / span,
        "idle Redis commands/s": (ops1 - ops0 - 1) / span,  # less the INFO between them
        "idle start p50 (ms)": statistics.median(latencies),
        "idle start p99 (ms)": pct(latencies, 0.99),
        "idle start max (ms)": max(latencies),
    }


async def run(ctx: Context) -> list[Table]:
    jobs, idle_s, queued, replies, arq_samples, concurrency = SIZES[ctx.size]
    idle = Table(
        "latency",
        f"Idle worker: {idle_s:g} s quiet, then {jobs} jobs enqueued one at a time",
        ["arq", "pw"],
        baseline="arq",
    )
    for round_ in range(ctx.rounds):
        for kind in ctx.turn(["arq", "pw"], round_):
            idle.add(kind, await measure_idle(kind, ctx.url, jobs, idle_s))
    return [idle, await backlog.run(ctx.url, queued, replies, arq_samples, concurrency)]
