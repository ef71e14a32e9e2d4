#!/usr/bin/env python3
"""How long a /metrics scrape takes with 100,000 jobs queued, and what the background sampler
costs next to a full scan of the queue. A benchmark to rerun, not a test:

    .venv/bin/python scripts/bench_metrics.py [--jobs 100000] [--scrapes 200]

It starts its own throwaway redis-server on a free loopback port, queues the jobs in arq's own
format (9 in 10 due, 1 in 10 deferred; two job types, 2:1), and serves the worker's own metrics
server, sampler and registry in this process. Figures are medians (and 95th percentiles) of the
scrapes: once with the sampler idle between refreshes, once with it refreshing back to back
(the worst case: its reads compete with the scrape for this process's CPU).
"""

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
from redis.asyncio import Redis

from jobs.deps import FanoutJob
from worker.engine.serializer import serialize
from worker.keys import WorkerKeys
from worker.local.embedded import free_port, redis_server
from worker.observability.health import Heartbeat, Liveness, ProbeServer
from worker.observability.http_instrument import OPERATIONS
from worker.observability.job_counts import JobMetrics
from worker.observability.metrics import Metrics
from worker.observability.ports import METRICS_PATH
from worker.observability.queue_depth import job_type_of
from worker.observability.sampler import Sampler
from worker.scheduling.fanout import BulkEnqueuer

QUEUE = "arq:queue"
TYPES = ["daily_prospect_queue", "process_prospect"]
# A payload the size of a real prospect job's (a company record).
PAYLOAD = {
    "run_id": "2026-12-02",
    "rank": 1,
    "company": {
        "id": "0KnnhqllgKDktTK5n9Zb4z5tuLEs",
        "name": "North Wind Analytics",
        "domain": "northwind-analytics.example",
        "website": "https://northwind-analytics.example",
        "industry": "computer software",
        "size": "51-200",
        "country": "united states",
        "region": "california",
        "tags": ["hiring", "recently funded", "series a"],
        "description": "Analytics for revenue teams. " * 8,
    },
}


async def fill(redis_url: str, jobs: int) -> None:
    redis = Redis.from_url(redis_url)
    enqueuer = BulkEnqueuer(redis, queue_name=QUEUE, serializer=serialize, expires_ms=3_600_000)
    batch = [
        FanoutJob(job_id=f"job:{i}", function=TYPES[i % 3 != 0], payload=PAYLOAD)
        for i in range(jobs)
    ]
    await enqueuer.enqueue_many(batch)
    later = int(time.time() * 1000) + 3_600_000
    await redis.zadd(QUEUE, {f"job:{i}": later for i in range(0, jobs, 10)})
    await redis.aclose()


def scrape_times(port: int, count: int) -> tuple[list[float], int]:
    times, size = [], 0
    with httpx.Client(timeout=10) as http:
        for _ in range(count):
            started = time.perf_counter()
            response = http.get(f"http://127.0.0.1:{port}{METRICS_PATH}")
            times.append(time.perf_counter() - started)
            response.raise_for_status()
            size = len(response.content)
    return times, size


async def full_scan(redis: Redis) -> dict[str, int]:
    """What a scrape would cost without the sampler: every member, every job record."""
    counts: dict[str, int] = {}
    members = await redis.zrange(QUEUE, 0, -1)
    for start in range(0, len(members), 1000):
        chunk = members[start : start + 1000]
        for raw in await redis.mget([b"arq:job:" + m for m in chunk]):
            name = job_type_of(raw, TYPES)
            counts[name] = counts.get(name, 0) + 1
    return counts


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(values) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms"


async def bench(redis_url: str, jobs: int, scrapes: int) -> None:
    started = time.perf_counter()
    await fill(redis_url, jobs)
    print(f"queued {jobs:,} jobs in {time.perf_counter() - started:.1f} s")

    metrics = Metrics(TYPES, OPERATIONS, job_limits=dict.fromkeys(TYPES, 20), max_jobs=50)
    queue_redis = Redis.from_url(redis_url)
    redis = Redis.from_url(redis_url, decode_responses=True)
    sampler = Sampler(
        metrics,
        JobMetrics(metrics),
        queue_redis=queue_redis,
        redis=redis,
        keys=WorkerKeys(),
        queue_name=QUEUE,
        tz=ZoneInfo("UTC"),
        daily_limit=50,
        replica="bench",
        interval_s=5.0,
    )
    refreshes = []
    for _ in range(20):
        begun = time.perf_counter()
        figures, _ = await sampler.refresh()
        refreshes.append(time.perf_counter() - begun)
    scans = []
    for _ in range(3):
        begun = time.perf_counter()
        exact = await full_scan(queue_redis)
        scans.append(time.perf_counter() - begun)

    heartbeat = Heartbeat(metrics)
    server = ProbeServer(metrics, Liveness(heartbeat, stale_s=30), lambda: (True, "bench"))
    port = server.start("127.0.0.1", free_port())
    try:
        idle, size = await asyncio.to_thread(scrape_times, port, scrapes)

        async def refresh_forever() -> None:
            while True:
                await sampler.refresh()
                await asyncio.sleep(0)

        busy_task = asyncio.create_task(refresh_forever())
        busy, _ = await asyncio.to_thread(scrape_times, port, scrapes)
        busy_task.cancel()
        await asyncio.gather(busy_task, return_exceptions=True)
    finally:
        server.stop()
        await queue_redis.aclose()
        await redis.aclose()

    print(f"queue: {figures.due:,} due, {figures.scheduled:,} scheduled")
    sampled = {
        name: figures.by_type["due"].get(name, 0) + figures.by_type["scheduled"].get(name, 0)
        for name in exact
    }
    print(f"by type, sampled: {orjson.dumps(sampled).decode()}")
    print(f"by type, exact:   {orjson.dumps(exact).decode()}")
    print(f"/metrics body: {size:,} bytes")
    print(f"/metrics, sampler idle        ({scrapes} scrapes): {ms(idle)}")
    print(f"/metrics, sampler back to back ({scrapes} scrapes): {ms(busy)}")
    print(f"sampler refresh (20 runs):     {ms(refreshes)}")
    print(f"full scan of the queue (3 runs): {ms(scans)}")
    ratio = statistics.median(scans) / statistics.median(refreshes)
    print(f"a full scan costs {ratio:.0f}x a sampler refresh (medians)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    return on_throwaway_redis(lambda url: bench(url, args.jobs, args.scrapes))


def on_throwaway_redis(work: Callable[[str], Coroutine[Any, Any, None]]) -> int:
    """Run `work(url)` on a redis-server started for it on a free loopback port; 1 (and why)
    when none is installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not installed", file=sys.stderr)
        return 1
    with redis_server(binary, free_port()) as server:
        asyncio.run(work(server.url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
