"""Runtime cost benchmark: drain N no-op jobs with raw arq and with prospect-worker's runtime,
side by side in interleaved rounds, each worker in its own process on a throwaway redis-server.

    .venv/bin/python scripts/bench_runtime.py [--jobs 10000] [--rounds 3]

(the project's environment, where the repository root is importable).

- arq:  a plain `arq.Worker`, an async no-op function, orjson, poll 0.01 s, max_jobs 100.
- pw:   what `arq worker.WorkerSettings` runs (settings from the environment, the wiring of
        `worker.app.worker_settings`: startup, dependencies, serializer, runtime, hooks, and the
        worker class the package gives arq's CLI) plus one no-op `JobSpec` adapted by
        `worker.engine.functions.arq_function`; max_jobs 100, type limit 100, poll 0.01 s. Only
        public seams are used, so this keeps measuring whatever the runtime becomes.

Each worker process enqueues its N jobs in arq's format (untimed), then drains them in burst
mode. Per worker process, from the end of its startup to the end of the drain: jobs/s, the process's
own CPU per job (getrusage), Redis CPU per job (INFO cpu), Redis commands per job (INFO
commandstats, script-internal calls and both halves of MULTI/EXEC included, INFO excluded) and
client round trips per job (socket writes of redis-py, a pipeline counting once). Medians over
the rounds and the pw/arq ratios; machines here are noisy, so compare ratios within one run.
"""

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import arq.worker
import orjson
from arq.connections import RedisSettings
from arq.jobs import serialize_job
from arq.worker import Worker, func, get_kwargs
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from jobs.deps import Deps, Progress
from settings import load_settings
from worker.engine.functions import arq_function
from worker.local.embedded import free_port
from worker.runtime.spec import JobSpec

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("arq", "pw")
NOOP = "bench_noop"
CONCURRENCY = 100
POLL_S = 0.01
EXPIRES_MS = 3_600_000


# --- the two workers ---------------------------------------------------------------------


async def arq_noop(ctx: dict[str, Any]) -> None:
    return None


class Nothing(BaseModel):
    pass


async def pw_noop(deps: Deps, payload: Nothing, progress: Progress) -> Nothing:
    return payload


def worker_env(url: str) -> dict[str, str]:
    """The worker process's environment: the caller's, minus any PW_ setting, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PW_") and k != "REDIS_URL"}
    return {
        **env,
        "REDIS_URL": url,
        "PW_MAX_JOBS": str(CONCURRENCY),
        "PW_POLL_DELAY_S": str(POLL_S),
        # A port of its own, so whatever the engine serves there cannot clash with a neighbour.
        "PW_METRICS_PORT": str(free_port()),
        # Only the benchmark's jobs: no catch-up of today's missed daily run.
        "PW_DAILY_CATCH_UP": "false",
    }


def build_worker(kind: str, url: str) -> tuple[dict[str, Any], Callable[..., Worker]]:
    """The worker's arguments and class; the job serializer and queue name come from here too."""
    if kind == "arq":
        arq_kwargs = {
            "functions": [func(arq_noop, name=NOOP)],
            "redis_settings": RedisSettings.from_dsn(url),
            "job_serializer": orjson.dumps,
            "job_deserializer": orjson.loads,
            "max_jobs": CONCURRENCY,
            "poll_delay": POLL_S,
        }
        return arq_kwargs, Worker
    # What `arq worker.WorkerSettings` loads: settings from the environment, the production
    # wiring of `worker.app.worker_settings`, and whatever the package sets up for arq's CLI.
    import worker as engine

    settings_class = engine.WorkerSettings
    settings = load_settings()
    spec = JobSpec(
        name=NOOP,
        body=pw_noop,
        payload=Nothing,
        timeout_s=60.0,
        max_tries=settings.retry.max_tries,
        limit=CONCURRENCY,
    )
    kwargs: dict[str, Any] = dict(get_kwargs(settings_class))
    kwargs["functions"] = [*kwargs["functions"], arq_function(spec)]
    # Looked up now, as arq's CLI does: the package may have pointed the name at its own class.
    return kwargs, arq.worker.Worker


# --- the child: one worker process, measured from inside ----------------------------------

round_trips = [0]  # a one-item box the patched method counts into (no global statement)


def count_round_trips() -> None:
    """Count redis-py socket writes: one per command, one per pipeline or transaction."""
    send = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        round_trips[0] += 1
        await send(self, command, check_health)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


async def redis_counters(redis: Redis) -> tuple[float, int]:
    """(Redis CPU seconds, commands run), not counting INFO itself."""
    cpu = await redis.info("cpu")
    stats = await redis.info("commandstats")
    commands = sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"], commands


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def child(kind: str, url: str, jobs: int) -> dict[str, Any]:
    count_round_trips()
    probe = Redis.from_url(url)
    marks: dict[str, float] = {}
    kwargs, worker_class = build_worker(kind, url)
    await enqueue(url, jobs, kwargs["job_serializer"], kwargs.get("queue_name") or "arq:queue")
    startup: Callable[[dict[str, Any]], Any] | None = kwargs.get("on_startup")

    async def measured_startup(ctx: dict[str, Any]) -> None:
        if startup is not None:
            await startup(ctx)
        marks["redis_cpu"], marks["commands"] = await redis_counters(probe)
        marks["round_trips"] = round_trips[0]
        marks["cpu"], marks["wall"] = own_cpu(), time.perf_counter()

    kwargs.update(on_startup=measured_startup, burst=True, handle_signals=False)
    worker = worker_class(**kwargs)
    try:
        await worker.main()
        wall, cpu, trips = time.perf_counter(), own_cpu(), round_trips[0]
        redis_cpu, commands = await redis_counters(probe)
        done, failed = worker.jobs_complete, worker.jobs_failed
    finally:
        await worker.close()
        await probe.aclose()
    if done != jobs or failed:
        raise SystemExit(f"{kind}: {done} of {jobs} jobs completed, {failed} failed")
    return {
        "jobs_s": jobs / (wall - marks["wall"]),
        "cpu_us": (cpu - marks["cpu"]) / jobs * 1e6,
        "redis_cpu_us": (redis_cpu - marks["redis_cpu"]) / jobs * 1e6,
        "commands": (commands - marks["commands"]) / jobs,
        "round_trips": (trips - marks["round_trips"]) / jobs,
        "worker_class": type(worker).__name__,
    }


# --- the parent: rounds, enqueueing, the table --------------------------------------------


async def enqueue(url: str, jobs: int, serializer: Callable[..., bytes], queue: str) -> None:
    """N jobs in arq's own format (what `enqueue_job` writes), pipelined so setup is quick."""
    redis = Redis.from_url(url)
    await redis.flushall()
    now_ms = int(time.time() * 1000)
    for start in range(0, jobs, 1000):
        pipe = redis.pipeline(transaction=False)
        for i in range(start, min(start + 1000, jobs)):
            data = serialize_job(NOOP, (), {}, None, now_ms, serializer=serializer)
            pipe.psetex(f"arq:job:{NOOP}:{i}", EXPIRES_MS, data)
            pipe.zadd(queue, {f"{NOOP}:{i}": now_ms})
        await pipe.execute()
    await redis.aclose()


def run_child(kind: str, url: str, jobs: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--redis", url, "--jobs", str(jobs)],
        cwd=ROOT,
        env=worker_env(url),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


COLUMNS = (
    ("jobs_s", "drain (jobs/s)", "{:9.0f}"),
    ("cpu_us", "worker CPU/job (µs)", "{:9.0f}"),
    ("redis_cpu_us", "Redis CPU/job (µs)", "{:9.1f}"),
    ("commands", "Redis commands/job", "{:9.2f}"),
    ("round_trips", "round trips/job", "{:9.2f}"),
)


def report(samples: dict[str, list[dict[str, Any]]], jobs: int, rounds: int) -> None:
    print(f"\n{jobs} no-op jobs, {rounds} interleaved rounds, median (min-max) per worker process")
    print(f"{'':22s}{'arq':>24s}{'pw':>24s}{'pw/arq':>9s}")
    for key, label, fmt in COLUMNS:
        cells, medians = [], []
        for kind in KINDS:
            values = [sample[key] for sample in samples[kind]]
            medians.append(statistics.median(values))
            spread = f"({fmt.format(min(values)).strip()}-{fmt.format(max(values)).strip()})"
            cells.append(f"{fmt.format(medians[-1])} {spread:>14s}")
        ratio = medians[1] / medians[0] if medians[0] else float("nan")
        print(f"{label:22s}{cells[0]:>24s}{cells[1]:>24s}{ratio:8.2f}x")


def main(jobs: int, rounds: int) -> None:
    from tests.support.processes import RedisServer

    samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    with RedisServer() as server:
        for r in range(rounds):
            for kind in KINDS if r % 2 == 0 else KINDS[::-1]:
                sample = run_child(kind, server.url, jobs)
                samples[kind].append(sample)
                print(
                    f"round {r + 1} {kind:3s}: {sample['jobs_s']:6.0f} jobs/s, "
                    f"{sample['cpu_us']:5.0f} µs CPU/job, {sample['commands']:5.2f} commands/job "
                    f"({sample['worker_class']})",
                    flush=True,
                )
    report(samples, jobs, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args.redis, args.jobs))))
    else:
        main(args.jobs, args.rounds)
