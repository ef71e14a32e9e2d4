"""What the cases that run whole worker processes share: the processes, results, percentiles."""

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import Redis

from tests.support.processes import WorkerProcess, env_for

ROOT = Path(__file__).resolve().parents[2]

# How long a worker may take to start: minutes, not the tests' 30 s, on a machine this busy.
READY_S = 180.0
RAW_ARQ = "scripts.bench.arq_app.ArqSettings"
PROJECT = "worker.WorkerSettings"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def log_path(name: str) -> Path:
    # The suite's process id in the name: two runs at once must not share a worker's log.
    return Path(tempfile.gettempdir()) / f"bench-{os.getpid()}-{name}.log"


def worker(kind: str, url: str, name: str, **extra: str) -> WorkerProcess:
    """A worker process: raw arq ("arq") or the project's (`arq worker.WorkerSettings`)."""
    env = env_for(url, PYTHONPATH=str(ROOT), PW_POLL_DELAY_S="0.05", **extra)
    settings = RAW_ARQ if kind == "arq" else PROJECT
    return WorkerProcess(env, log_path(name), settings=settings)


def pw_worker(url: str, name: str, concurrency: int, **extra: str) -> WorkerProcess:
    """The project's worker running `concurrency` prospects at once (its max_jobs and the
    prospect type's limit both)."""
    limits = {"PW_MAX_JOBS": str(concurrency), "PW_JOBS__PROCESS_PROSPECT__LIMIT": str(concurrency)}
    return worker("pw", url, name, **limits, **extra)


async def arq_pool(url: str) -> ArqRedis:
    return await create_pool(
        RedisSettings.from_dsn(url), job_serializer=orjson.dumps, job_deserializer=orjson.loads
    )


async def result_of(redis: Redis, job_id: str, timeout_s: float = 600) -> dict[str, Any]:
    """arq's result record once the job has ended (polled: the worker is another process)."""
    deadline = time.monotonic() + timeout_s
    while (raw := await redis.get(f"arq:result:{job_id}")) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} did not end within {timeout_s} s")
        await asyncio.sleep(0.002)
    record: dict[str, Any] = orjson.loads(raw)
    return record


async def count_results(redis: Redis, prefix: str) -> int:
    return sum([1 async for _ in redis.scan_iter(f"arq:result:{prefix}*", count=5000)])
