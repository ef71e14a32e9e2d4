"""Case `scale`: a large backlog. The daily job's fan-out of 100,000 prospects (time, and the
client's memory: tracemalloc's peak inside the fan-out, at a tenth of the size and at full size,
to show whether it grows with the count); then one pw worker process (`arq
worker.WorkerSettings`, max_jobs 200, the prospect type's limit 200) on that queue, its fake
providers holding every request 10 s, so 200 jobs are in flight: its resident memory
(/proc VmRSS) and `/metrics` latency (scrapes one after another, median and p95).

Targets (issue 19): worker RSS <= 150 MB and /metrics <= 50 ms with 100,000 jobs queued and 200
in flight; the fan-out of 100,000 prospects <= 1 s with flat client memory.
"""

import asyncio
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from jobs.keys import Keys
from jobs.prospecting.runs import RunLedger
from scripts.bench.backlog import prospect_jobs
from scripts.bench.context import Context
from scripts.bench.processes import READY_S, pct, pw_worker
from scripts.bench.report import Table
from tests.support.fake_providers import FakeProviders
from tests.support.faults import ENDPOINTS, FaultPlan
from tests.support.runs import project_enqueuer
from worker.local.embedded import free_port
from worker.observability.ports import METRICS_PATH

# (prospects, scrapes, jobs in flight, the fakes' latency: long enough to measure with the
# jobs held). Tiny only proves the case runs: fewer slots, held briefly.
SIZES = {
    "full": (100_000, 200, 200, 10.0),
    "quick": (20_000, 50, 200, 10.0),
    "tiny": (300, 5, 20, 2.0),
}


async def fan_out(url: str, count: int, *, traced: bool) -> tuple[float, float]:
    """(seconds, peak MB traced inside the fan-out) of one run's fan-out on a flushed Redis."""
    redis = Redis.from_url(url, decode_responses=True)
    await redis.flushall()
    run_id = f"scale{count}"
    await RunLedger(redis, Keys()).open(run_id, int(time.time() * 1000))
    jobs = prospect_jobs(run_id, count)  # the caller's list, outside the measure
    if traced:
        tracemalloc.start()
    began = time.perf_counter()
    added = await project_enqueuer(redis).enqueue_many(jobs)
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if traced else float("nan")
    if traced:
        tracemalloc.stop()
    await redis.aclose()
    assert added.count("added") == count, "the fan-out was not enqueued whole"
    return seconds, peak


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def in_progress(redis: Redis) -> int:
    return sum([1 async for _ in redis.scan_iter("arq:in-progress:*", count=10_000)])


def scrape(port: int, count: int) -> list[float]:
    times = []
    with httpx.Client(timeout=10) as http:
        for _ in range(count):
            started = time.perf_counter()
            http.get(f"http://127.0.0.1:{port}{METRICS_PATH}").raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times


async def loaded_worker(url: str, scrapes: int, in_flight: int, hold_s: float) -> dict[str, Any]:
    """The worker on the queue `fan_out` left: RSS and scrapes with `in_flight` jobs held."""
    redis = Redis.from_url(url)
    port = free_port()
    plans = {endpoint: FaultPlan(latency_s=hold_s) for endpoint in ENDPOINTS}
    with FakeProviders(plans) as fake:
        process = pw_worker(
            url,
            "scale-pw",
            in_flight,
            **fake.env(),
            PW_METRICS_PORT=str(port),
            PW_METRICS_HOST="127.0.0.1",
        )
        try:
            process.wait_ready(READY_S)
            deadline = time.monotonic() + 60
            while (running := await in_progress(redis)) < in_flight:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            queued = await redis.zcard("arq:queue")
            times = await asyncio.to_thread(scrape, port, scrapes)
            rss = rss_mb(process.process.pid)
        finally:
            process.terminate()
            await redis.aclose()
    return {
        "jobs queued (in flight included)": queued,
        "jobs in flight": running,
        "worker RSS (MB)": rss,
        "/metrics median (ms)": statistics.median(times),
        "/metrics p95 (ms)": pct(times, 0.95),
    }


async def run(ctx: Context) -> list[Table]:
    prospects, scrapes, in_flight, hold_s = SIZES[ctx.size]
    column = "pw"
    table = Table(
        "scale", f"Scale: a fan-out of {prospects:,} prospects, then a worker on them", [column]
    )
    for round_ in range(ctx.rounds):
        _, tenth_peak = await fan_out(ctx.url, prospects // 10, traced=True)
        _, peak = await fan_out(ctx.url, prospects, traced=True)
        seconds, _ = await fan_out(ctx.url, prospects, traced=False)
        ctx.say(f"scale round {round_ + 1}: fan-out of {prospects:,} in {seconds:.2f} s")
        table.add(
            column,
            {
                f"fan-out of {prospects:,} (s)": seconds,
                f"fan-out memory peak, {prospects // 10:,} (MB)": tenth_peak,
                f"fan-out memory peak, {prospects:,} (MB)": peak,
                **await loaded_worker(ctx.url, scrapes, in_flight, hold_s),
            },
        )
    table.notes.append(
        "Fan-out memory: tracemalloc's peak inside `enqueue_many` (the jobs' list is built "
        "before it). The worker's providers hold each request "
        f"{hold_s:g} s, so its {in_flight} slots stay busy while it is measured."
    )
    return [table]
