"""Scheduling benchmark, part of it: an idle worker's start latency and its idle cost, side by
side with raw arq, each worker in its own process on a throwaway redis-server.

    .venv/bin/python scripts/bench_scheduling.py [--jobs 100] [--idle-s 10]

- arq: a plain arq worker (this module's `ArqSettings`), a no-op `cleanup`, poll 0.05 s (the
  project's default poll), orjson.
- pw:  `arq worker.WorkerSettings` with its defaults (poll 0.05 s); jobs enqueued with
  `QueueClient.enqueue`, which publishes the wake-up signal.

Idle cost: the worker's own CPU (/proc) and the Redis commands per second (INFO stats, less
the benchmark's own calls) over `--idle-s` with nothing queued. Start latency: `--jobs` jobs
enqueued one at a time (20-80 ms apart, waiting for each), the start time in arq's result
record less the enqueue time in the job record (both ms). Not measured yet: the reply under a
10,000 backlog and the rate-limited run of 2,000 prospects.
"""

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import orjson
from arq import create_pool
from arq.connections import RedisSettings
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from settings import Settings  # noqa: E402
from tests.support.processes import RedisServer, WorkerProcess, env_for  # noqa: E402
from worker.client import QueueClient  # noqa: E402

POLL_S = "0.05"


async def cleanup(ctx: dict[str, Any]) -> None:
    return None


async def announce(ctx: dict[str, Any]) -> None:
    print("prospect-worker ready (raw arq)", flush=True)


class ArqSettings:
    functions: ClassVar = [cleanup]
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://127.0.0.1:1"))
    poll_delay = float(POLL_S)
    job_serializer = orjson.dumps
    job_deserializer = orjson.loads
    on_startup = announce


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def commands(redis: Redis) -> int:
    return int((await redis.info("stats"))["total_commands_processed"])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(kind: str, url: str, jobs: int, idle_s: float, log: Path) -> dict[str, float]:
    redis = Redis.from_url(url)
    await redis.flushall()
    env = env_for(url, PW_POLL_DELAY_S=POLL_S, PYTHONPATH=str(ROOT))
    target = "scripts.bench_scheduling.ArqSettings" if kind == "arq" else "worker.WorkerSettings"
    worker = WorkerProcess(env, log, settings=target)
    client = await QueueClient.connect(Settings(REDIS_URL=url)) if kind == "pw" else None
    pool = await create_pool(
        RedisSettings.from_dsn(url), job_serializer=orjson.dumps, job_deserializer=orjson.loads
    )
    try:
        worker.wait_ready()
        await asyncio.sleep(2)  # past start-up
        cpu0, ops0, t0 = cpu_s(worker.process.pid), await commands(redis), time.monotonic()
        await asyncio.sleep(idle_s)
        cpu1, ops1, t1 = cpu_s(worker.process.pid), await commands(redis), time.monotonic()
        latencies: list[float] = []
        for _ in range(jobs):
            await asyncio.sleep(random.uniform(0.02, 0.08))
            if client is not None:
                job_id = await client.enqueue("cleanup")
            else:
                job = await pool.enqueue_job("cleanup")
                assert job is not None
                job_id = job.job_id
            while (raw := await redis.get(f"arq:result:{job_id}")) is None:  # noqa: ASYNC110
                await asyncio.sleep(0.002)
            record = orjson.loads(raw)
            latencies.append(record["st"] - record["et"])
    finally:
        if client is not None:
            await client.close()
        await pool.aclose()
        await redis.aclose()
        worker.terminate()
    span = t1 - t0
    return {
        "idle CPU (% of a core)": 100 * (cpu1 - cpu0) / span,
        "idle Redis commands/s": (ops1 - ops0 - 1) / span,  # less the INFO between them
        "idle start p50 (ms)": statistics.median(latencies),
        "idle start p99 (ms)": pct(latencies, 0.99),
    }


async def main(jobs: int, idle_s: float, rounds: int) -> None:
    samples: dict[str, list[dict[str, float]]] = {"arq": [], "pw": []}
    with RedisServer() as server:
        for _ in range(rounds):  # interleaved, so drift on a shared machine hits both
            for kind in ("arq", "pw"):
                log = Path(f"/tmp/bench-scheduling-{kind}.log")  # noqa: S108 - worker output
                samples[kind].append(await measure(kind, server.url, jobs, idle_s, log))
    print(f"medians of {rounds} interleaved rounds, {jobs} jobs each")
    print(f"{'':28} {'arq 0.28':>10} {'pw':>10} {'pw/arq':>8}")
    for name in samples["arq"][0]:
        arq, pw = (statistics.median(s[name] for s in samples[k]) for k in ("arq", "pw"))
        print(f"{name:28} {arq:10.2f} {pw:10.2f} {pw / arq if arq else 0:7.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.idle_s, args.rounds))
