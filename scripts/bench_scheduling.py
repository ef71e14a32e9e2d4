"""Scheduling benchmark: the project's worker side by side with raw arq in one run, each worker
in its own process on a throwaway redis-server, fake providers on 127.0.0.1.

    .venv/bin/python scripts/bench_scheduling.py [--case idle|backlog|rate|all] [flags]

Three cases (`--case all`, the default, runs them in this order; about 10 minutes):

- `idle`: an idle worker's cost and start latency. Its own CPU (/proc) and the Redis commands
  per second (INFO stats, less the benchmark's own calls) over `--idle-s` with nothing queued;
  then `--jobs` jobs enqueued one at a time (20-80 ms apart, waiting for each). Medians of
  `--rounds` interleaved rounds.
- `backlog` (scripts/bench_sched_backlog.py): a reply's start with `--backlog` prospect jobs
  queued ahead of it and a worker draining them; `--replies` replies through
  `QueueClient.enqueue(priority="reply")` for pw, `--arq-samples` for raw arq (FIFO: each waits
  for the whole backlog, so few are taken). Target: pw p99 <= 100 ms.
- `rate` (scripts/bench_sched_rate.py): `--prospects` prospects of one run drained by
  `--workers` pw processes with an LLM limit of `--llm-per-min`, counted at the fake provider:
  the most requests in any 60 s window (never over the limit) and the span against the
  fastest the limit allows (target: within 5 %); raw arq makes the same number of LLM calls with
  no limiter. 2,000 prospects at 600/min take about 3.5 minutes by construction.

Start latency everywhere: the start time in arq's result record less the enqueue time in its job
record (ms). raw arq: `scripts/bench_arq.py` (a plain arq worker, orjson, poll 0.05 s); pw:
`arq worker.WorkerSettings` (poll 0.05 s, its default), jobs enqueued with the project's
enqueuers, which publish the wake-up signal. Machines here are shared: compare the ratios
within one run.
"""

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts import bench_sched_backlog, bench_sched_rate
from scripts.bench_sched_common import arq_pool, pct, ratio, result_of, worker
from settings import Settings
from tests.support.processes import RedisServer
from worker.client import QueueClient
from worker.registry import job_specs

CASES = ("idle", "backlog", "rate")


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
        process.wait_ready()
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


async def idle(url: str, jobs: int, idle_s: float, rounds: int) -> None:
    samples: dict[str, list[dict[str, float]]] = {"arq": [], "pw": []}
    for _ in range(rounds):  # interleaved, so drift on a shared machine hits both
        for kind in ("arq", "pw"):
            samples[kind].append(await measure_idle(kind, url, jobs, idle_s))
    print(f"\nidle worker: medians of {rounds} interleaved rounds, {jobs} jobs each")
    print(f"{'':28} {'arq 0.28':>10} {'pw':>10} {'pw/arq':>9}")
    for name in samples["arq"][0]:
        arq, pw = (statistics.median(s[name] for s in samples[k]) for k in ("arq", "pw"))
        print(f"{name:28} {arq:10.2f} {pw:10.2f} {ratio(pw, arq):>9}")


async def main(args: argparse.Namespace) -> None:
    chosen = CASES if args.case == "all" else (args.case,)
    print(f"cases: {', '.join(chosen)}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    with RedisServer() as server:
        if "idle" in chosen:
            await idle(server.url, args.jobs, args.idle_s, args.rounds)
        if "backlog" in chosen:
            await bench_sched_backlog.run(
                server.url, args.backlog, args.replies, args.arq_samples, args.concurrency
            )
        if "rate" in chosen:
            await bench_sched_rate.run(
                server.url,
                args.prospects,
                args.llm_per_min,
                args.workers,
                args.concurrency,
                args.rate_timeout_s,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=(*CASES, "all"), default="all")
    # 300, so that a p99 is not the second-worst of a hundred (one stall of the shared machine).
    parser.add_argument("--jobs", type=int, default=300, help="idle: jobs per round")
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle: seconds measured idle")
    parser.add_argument("--rounds", type=int, default=3, help="idle: interleaved rounds")
    parser.add_argument("--backlog", type=int, default=10_000, help="backlog: jobs queued")
    parser.add_argument("--replies", type=int, default=100, help="backlog: pw replies")
    parser.add_argument("--arq-samples", type=int, default=3, help="backlog: raw arq replies")
    parser.add_argument("--concurrency", type=int, default=20, help="jobs at once per worker")
    parser.add_argument("--prospects", type=int, default=2_000, help="rate: prospects")
    parser.add_argument("--llm-per-min", type=int, default=600, help="rate: the LLM's limit")
    parser.add_argument("--workers", type=int, default=2, help="rate: pw worker processes")
    parser.add_argument("--rate-timeout-s", type=float, default=900.0, help="rate: give up after")
    asyncio.run(main(parser.parse_args()))
