#!/usr/bin/env python3
"""How long the console's reads take (worker/ops: today, the dead-letter pages, drafts, charts)
with 100,000 dead letters and 100,000 jobs queued. A benchmark to rerun, not a test:

    .venv/bin/python scripts/bench_console.py [--letters 100000] [--jobs 100000] [--rounds 200]

It starts its own throwaway redis-server on a free loopback port and fills it: the dead letters
(five job types, five common error classes and one rare one, 1 in 1,000; a payload the size of a
prospect job's), the queued jobs (in arq's own format, 1 in 10 deferred), a daily run of 75
prospects with its 50 drafts and their evidence, four live replicas, and 48 hours of per-minute
job counts for five job types. Each read is timed in this process, over `--rounds` calls one
after another: median and 95th percentile, and the CPU a call took here and in Redis. Then a
burst worker runs `--worker-jobs` jobs and Redis's own command counts show what the per-minute
counters cost per job.
"""

import argparse
import asyncio
import logging
import random
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from jobs.deps import FanoutJob
from jobs.prospecting.runs import RUN_TTL_S
from settings import Settings
from worker.app import burst_worker
from worker.engine.serializer import serialize
from worker.keys import WorkerKeys
from worker.local.embedded import free_port, redis_server
from worker.observability.minute_counts import Tally, queue_tally
from worker.observability.replicas import publish
from worker.ops.charts import series
from worker.ops.context import Ops, open_ops
from worker.ops.listings import DEAD_LETTER_WINDOW, dead_letters_page, drafts_page
from worker.ops.lookup import in_flight
from worker.ops.today import today
from worker.registry import CLEANUP_JOB
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


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(values) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms"


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


TYPES = ["process_prospect", "send_outreach", "daily_prospect_queue", "process_reply", "cleanup"]
ERRORS = ["PermanentError", "TimeoutError", "ConnectError", "ValidationError", "SmtpRejected"]
RARE = "KeyError"
FENCING_LOGGER = "prospect_worker.fencing"
COUNTS_PREFIX = "bench-counts"  # the worker's own keys, apart from the filled ones


async def fill_letters(redis: Redis, ops: Ops, count: int) -> None:
    """Entries as worker/runtime/deadletter.py writes them, oldest first."""
    rand = random.Random(7)
    payload = orjson.dumps(PAYLOAD).decode()
    now_ms = int(time.time() * 1000) - count
    for start in range(0, count, 5_000):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(start, min(count, start + 5_000)):
                error = RARE if i % 1_000 == 999 else rand.choice(ERRORS)
                fields = {
                    "job_id": f"job:{i}",
                    "function": rand.choice(TYPES),
                    "kind": "failed",
                    "error_type": error,
                    "error": f"{error}: the far end said no ({i})",
                    "tries": 3,
                    "failed_ms": now_ms + i,
                    "payload": payload,
                }
                pipe.xadd(ops.keys.dead_letters, fields, id=f"{now_ms + i}-0")
            await pipe.execute()


async def fill_run(redis: Redis, ops: Ops) -> str:
    """Today's run: 75 prospects fanned out and done, 50 drafts queued with their evidence."""
    run_id = datetime.now(ops.settings.tz).date().isoformat()
    now_ms = int(time.time() * 1000)
    company = PAYLOAD["company"]
    chosen = [{**company, "id": f"c{i}", "tags": list(company["tags"])} for i in range(75)]
    plan = {"quota_used_before": 0, "discovered": 175, "chosen": chosen, "skipped": {}}
    score = {
        "total": 72,
        "factors": [
            {"name": name, "points": 10, "weight": 20, "reason": "fits the profile"}
            for name in ("industry", "size", "region", "signals", "website")
        ],
    }
    enrichment = {
        "website": {"url": company["website"], "status": 200, "title": company["name"]},
        "contact": {"email": "ana@northwind-analytics.example", "first_name": "Ana"},
    }
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(
            ops.keys.run(run_id),
            mapping={
                "started_ms": now_ms - 60_000,
                "finished_ms": now_ms,
                "fanout_closed": "1",
                "discovered": 175,
                "total": 75,
                "done": 75,
                "enriched": 75,
                "scored": 75,
                "drafted": 53,
                "queued": 50,
            },
        )
        pipe.set(ops.keys.run_plan(run_id), orjson.dumps(plan), ex=RUN_TTL_S)
        for i in range(75):
            pipe.hset(ops.keys.run_outcomes(run_id), f"c{i}", "queued" if i < 50 else "skipped")
        await pipe.execute()
    for i in range(50):
        entry = await redis.xadd(
            ops.keys.approvals, {"company_id": f"c{i}", "run_id": run_id, "subject": "Hello"}
        )
        await redis.hset(
            ops.keys.draft(f"c{i}"),
            mapping={
                "stream_id": entry,
                "state": "pending" if i % 5 else "approved",
                "run_id": run_id,
                "to": f"person{i}@northwind-analytics.example",
                "subject": "A question about your revenue reports",
                "body": "Hello Ana,\n\n" + "A few lines about why we write. " * 20,
                "score": 72,
                "writer": "template",
                "queued_ms": now_ms,
            },
        )
        await redis.hset(
            ops.keys.prospect(run_id, f"c{i}"),
            mapping={"score": orjson.dumps(score), "enrichment": orjson.dumps(enrichment)},
        )
    return run_id


async def fill_counts(redis: Redis, ops: Ops, hours: int) -> None:
    now = time.time()
    for minute in range(hours * 60):
        tally = Tally()
        for job_type in TYPES:
            for _ in range(3):
                tally.add(job_type, "succeeded", 0.4)
            tally.add(job_type, "failed", 1.2)
        async with redis.pipeline(transaction=False) as pipe:
            queue_tally(pipe, ops.keys, tally, now_s=now - minute * 60)
            await pipe.execute()
    for replica in range(4):
        await publish(
            redis,
            ops.keys,
            replica=f"worker-{replica}:1",
            in_flight={"process_prospect": 20},
            outcomes=Tally(),
            now_s=now,
            ttl_s=60,
        )


async def timed(
    redis: Redis, rounds: int, call: Callable[[], Awaitable[Any]]
) -> tuple[str, str, Any]:
    """Wall time per call (median, p95), and what a call cost in CPU, here and in Redis (its
    own count): on a loaded machine the wall time is mostly waiting for a core, the CPU is
    what the read itself takes."""
    times, answer = [], None
    redis_before = await redis_usec(redis)
    cpu_before = time.process_time()
    for _ in range(rounds):
        started = time.perf_counter()
        answer = await call()
        times.append(time.perf_counter() - started)
    cpu_ms = (time.process_time() - cpu_before) * 1000 / rounds
    redis_ms = (await redis_usec(redis) - redis_before) / 1000 / rounds
    return ms(times), f"cpu {cpu_ms:6.2f} ms here, {redis_ms:6.2f} ms in Redis", answer


async def redis_usec(redis: Redis) -> int:
    """The CPU redis-server has used (user and system), in microseconds."""
    cpu = await redis.info("cpu")
    return int((float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1_000_000)


class Lost(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def counter_cost(url: str, jobs: int) -> None:
    """Redis commands a burst worker sends for the per-minute counts, against jobs run."""
    settings = Settings(
        REDIS_URL=url,
        queue_name="bench:counts",
        key_prefix=COUNTS_PREFIX,
        daily_catch_up=False,
        metrics_port=0,
    )
    async with open_ops(settings) as ops:
        for _ in range(jobs):
            await ops.client.enqueue(CLEANUP_JOB)
        before = await ops.redis.info("commandstats")
        # Hundreds of cleanup jobs at once on a busy machine lose some of their markers and
        # say so, one line each (main does the same): counted here, not printed.
        lost = Lost()
        fencing_log = logging.getLogger(FENCING_LOGGER)
        fencing_log.addHandler(lost)
        fencing_log.propagate = False
        worker = burst_worker(settings, skip_info=True)
        try:
            await worker.drain()
        finally:
            await worker.close()
            fencing_log.removeHandler(lost)
            fencing_log.propagate = True
        after = await ops.redis.info("commandstats")

    def calls(name: str) -> int:
        return int(after.get(name, {}).get("calls", 0)) - int(before.get(name, {}).get("calls", 0))

    done = await counts_written(url)
    print(
        f"a burst worker ran {jobs} {CLEANUP_JOB} jobs (the counts say {done}) with "
        f"{calls('cmdstat_evalsha')} EVALSHA and {calls('cmdstat_hset')} HSET in all; the "
        f"per-minute counts took {calls('cmdstat_hincrby')} HINCRBY and "
        f"{calls('cmdstat_hincrbyfloat')} HINCRBYFLOAT, sent with the sampler's writes "
        f"({lost.count} tries lost their marker and ran again)"
    )


async def counts_written(url: str) -> int:
    """The succeeded jobs of the last few minutes' counts."""
    redis, keys = Redis.from_url(url, decode_responses=True), WorkerKeys(COUNTS_PREFIX)
    try:
        last = int(time.time() // 60)
        field = f"{CLEANUP_JOB}:succeeded"
        found = [await redis.hget(keys.outcomes(m), field) for m in range(last - 5, last + 1)]
        return sum(int(value or 0) for value in found)
    finally:
        await redis.aclose()


async def bench(url: str, letters: int, jobs: int, rounds: int, worker_jobs: int) -> None:
    settings = Settings(REDIS_URL=url, metrics_port=0)
    async with open_ops(settings) as ops:
        redis = ops.redis
        started = time.perf_counter()
        await fill_letters(redis, ops, letters)
        await fill(url, jobs)
        run_id = await fill_run(redis, ops)
        await fill_counts(redis, ops, hours=48)
        print(
            f"filled {letters:,} dead letters, {jobs:,} queued jobs, run {run_id} with 50 "
            f"drafts, 48 h of counts in {time.perf_counter() - started:.1f} s"
        )
        print(f"reads, {rounds} rounds each, median and 95th percentile:")
        slow = max(10, rounds // 10)
        rare = f"error_type={RARE} (1 in 1,000: the window of {DEAD_LETTER_WINDOW:,} scanned)"
        cases: list[tuple[str, int, Callable[[], Awaitable[Any]]]] = [
            ("today()", rounds, lambda: today(ops)),
            ("dead letters, first page of 50", rounds, lambda: dead_letters_page(ops)),
            (
                "dead letters, job_type=send_outreach",
                rounds,
                lambda: dead_letters_page(ops, job_type="send_outreach"),
            ),
            (
                "dead letters, error_type=TimeoutError",
                rounds,
                lambda: dead_letters_page(ops, error_type="TimeoutError"),
            ),
            (
                "dead letters, job_type=cleanup + error_type=SmtpRejected",
                rounds,
                lambda: dead_letters_page(ops, job_type="cleanup", error_type="SmtpRejected"),
            ),
            (f"dead letters, {rare}", rounds, lambda: dead_letters_page(ops, error_type=RARE)),
            ("drafts, pending, first page of 50", rounds, lambda: drafts_page(ops, "pending")),
            ("jobs in flight", rounds, lambda: in_flight(ops)),
            ("charts, 48 h", slow, lambda: series(ops, hours=48)),
        ]
        for name, count, call in cases:
            figures, cpu, answer = await timed(redis, count, call)
            print(f"  {name:<62} {figures}   {cpu}   ({describe(answer)})")
    await counter_cost(url, worker_jobs)


def describe(answer: Any) -> str:
    if hasattr(answer, "items") and isinstance(answer.items, list):
        note = "; bounded" if answer.note else ""
        return f"{len(answer.items)} items{note}"
    if hasattr(answer, "stats"):
        return f"{answer.stats.due:,} due, {answer.stats.dead_letters:,} dead letters"
    if hasattr(answer, "types"):
        return f"{len(answer.types)} types x {len(answer.hours)} hours"
    return f"{len(answer)} items" if isinstance(answer, list) else type(answer).__name__


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--letters", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--worker-jobs", type=int, default=500)
    args = parser.parse_args()
    return on_throwaway_redis(
        lambda url: bench(url, args.letters, args.jobs, args.rounds, args.worker_jobs)
    )


if __name__ == "__main__":
    sys.exit(main())
