"""Part of case `latency`: a reply's start under a backlog of prospects.

- pw: `--backlog` process_prospect jobs (priority hot, ranked, the fan-out's own bulk enqueue)
  queued before the worker starts; the worker drains them for real (each asks the fake email
  finder on 127.0.0.1, fetches the sample site, scores, writes its checkpoints and a template
  draft). Meanwhile `--replies` process_reply jobs are enqueued one at a time with
  `QueueClient.enqueue(priority="reply")`, each after the previous one started.
- arq: the same backlog size of `prospect` jobs (one domain search on the same fake provider),
  then one reply (`cleanup`) enqueued behind them. arq is FIFO: the reply waits for the whole
  backlog, so each sample needs a fresh backlog and takes the backlog's drain time; only
  `--arq-samples` are taken.

Both workers run `--concurrency` jobs at once and poll every 0.05 s. The figure is the start
time in arq's result record less the enqueue time in its job record (ms).
"""

import asyncio
import random
import statistics
import time
from typing import Any

import orjson
from arq.jobs import serialize_job
from redis.asyncio import Redis

from jobs.clients.discovery import CompanyRecord, to_company
from jobs.clients.standins import load_sample_data
from jobs.deps import FanoutJob
from jobs.keys import Keys
from jobs.models import Company, ProspectJob
from jobs.prospecting.runs import RunLedger
from scripts.bench.processes import READY_S, arq_pool, pct, pw_worker, result_of, worker
from scripts.bench.report import Table
from settings import Settings
from tests.support.fake_providers import FakeProviders
from tests.support.runs import project_enqueuer
from worker.client import QueueClient
from worker.connections import JOB_EXPIRES_MS
from worker.registry import job_specs

QUEUE = "arq:queue"
REPLY_HEADERS = (
    "From: Dana <dana@{n}.example>\r\nSubject: Re: a quick idea\r\nMessage-ID: <r{n}@bench>"
)


def sample_companies() -> list[Company]:
    found = (
        to_company(CompanyRecord.model_validate(c.record)) for c in load_sample_data().companies
    )
    return [company for company in found if company is not None]


def prospect_jobs(run_id: str, count: int) -> list[FanoutJob]:
    """`count` prospects of one run, each a distinct company id (the sample's, cycled), so no
    job finds another's checkpoints."""
    sample = sample_companies()
    keys = Keys()
    jobs = []
    for rank in range(1, count + 1):
        base = sample[(rank - 1) % len(sample)]
        company = base.model_copy(update={"id": f"{base.id}-{rank}"})
        payload = ProspectJob(run_id=run_id, company=company, rank=rank).model_dump(mode="json")
        jobs.append(
            FanoutJob(
                job_id=f"prospect:{run_id}:{company.id}",
                function="process_prospect",
                payload=payload,
                priority="hot",
                rank=rank,
                claim_key=keys.claim(company.id),
                count_key=keys.run(run_id),
                members_key=keys.run_members(run_id),
            )
        )
    return jobs


async def enqueue_prospects(redis: Redis, run_id: str, count: int) -> None:
    """Open the run (as the daily job does) and fan its prospects out as the daily job does."""
    await RunLedger(redis, Keys()).open(run_id, int(time.time() * 1000))
    added = await project_enqueuer(redis).enqueue_many(prospect_jobs(run_id, count))
    assert added.count("added") == count, "the backlog was not enqueued whole"


async def enqueue_raw_backlog(redis: Redis, count: int, tag: str) -> None:
    """`count` arq jobs in arq's own format (what `enqueue_job` writes), pipelined."""
    domains = [c.domain for c in sample_companies()]
    now_ms = int(time.time() * 1000)
    for start in range(0, count, 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + 1000, count)):
                job_id = f"prospect:{tag}:{i:06d}"
                data = serialize_job(
                    "prospect",
                    (domains[i % len(domains)],),
                    {},
                    None,
                    now_ms,
                    serializer=orjson.dumps,
                )
                pipe.psetex(f"arq:job:{job_id}", JOB_EXPIRES_MS, data)
                pipe.zadd(QUEUE, {job_id: now_ms})
            await pipe.execute()


async def measure_pw(
    url: str, fake: FakeProviders, backlog: int, replies: int, concurrency: int
) -> dict[str, Any]:
    redis = Redis.from_url(url, decode_responses=True)
    await redis.flushall()
    await enqueue_prospects(redis, "backlog", backlog)
    process = pw_worker(url, "backlog-pw", concurrency, **fake.env("discovery", "email_finder"))
    client = await QueueClient.connect(
        settings := Settings(REDIS_URL=url), specs=job_specs(settings)
    )
    latencies, depths = [], []
    try:
        process.wait_ready(READY_S)
        began = time.monotonic()
        while await redis.zcard(QUEUE) > backlog - min(backlog // 4, 20 * concurrency):  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # draining at full speed before the first reply
        for n in range(replies):
            await asyncio.sleep(random.uniform(0.02, 0.08))
            depths.append(await redis.zcard(QUEUE))
            payload = {"headers": REPLY_HEADERS.format(n=n), "text": "Thanks, not right now."}
            job_id = await client.enqueue("process_reply", payload, priority="reply")
            record = await result_of(redis, job_id)
            latencies.append(record["st"] - record["et"])
        elapsed = time.monotonic() - began
        drained = backlog - await redis.zcard(QUEUE)
    finally:
        await client.close()
        process.terminate()
        await redis.aclose()
    return {
        "latencies": latencies,
        "depth": statistics.median(depths),
        "drain_per_s": drained / elapsed,
    }


async def measure_arq(
    url: str, fake: FakeProviders, backlog: int, samples: int, concurrency: int
) -> dict[str, Any]:
    redis = Redis.from_url(url)
    await redis.flushall()
    pool = await arq_pool(url)
    process = worker(
        "arq", url, "backlog-arq", BENCH_PROVIDER_URL=fake.url, BENCH_MAX_JOBS=str(concurrency)
    )
    latencies, depths, rates = [], [], []
    try:
        process.wait_ready(READY_S)
        for n in range(samples):
            began = time.monotonic()
            await enqueue_raw_backlog(redis, backlog, f"s{n}")
            depths.append(await redis.zcard(QUEUE))
            job = await pool.enqueue_job("cleanup")
            assert job is not None
            record = await result_of(redis, job.job_id)
            latencies.append(record["st"] - record["et"])
            rates.append(backlog / (time.monotonic() - began))
    finally:
        await pool.aclose()
        process.terminate()
        await redis.aclose()
    return {
        "latencies": latencies,
        "depth": statistics.median(depths),
        "drain_per_s": statistics.median(rates),
    }


def figures(side: dict[str, Any]) -> dict[str, float]:
    return {
        "jobs queued when a reply came (median)": side["depth"],
        "backlog drain (jobs/s)": side["drain_per_s"],
        "reply start p50 (ms)": statistics.median(side["latencies"]),
        "reply start p99 (ms)": pct(side["latencies"], 0.99),
        "reply start max (ms)": max(side["latencies"]),
    }


async def run(url: str, backlog: int, replies: int, arq_samples: int, concurrency: int) -> Table:
    with FakeProviders() as fake:
        pw = await measure_pw(url, fake, backlog, replies, concurrency)
        arq = await measure_arq(url, fake, backlog, arq_samples, concurrency)
    table = Table(
        "latency",
        f"A reply behind {backlog:,} queued prospect jobs, {concurrency} jobs at once",
        ["arq", "pw"],
        baseline="arq",
    )
    table.add("arq", figures(arq))
    table.add("pw", figures(pw))
    table.notes.append(
        f"One run; percentiles over pw's {len(pw['latencies'])} replies and arq's "
        f"{len(arq['latencies'])} (FIFO: each waits for the whole backlog, so few are taken). "
        "Target: pw reply start p99 <= 100 ms."
    )
    return table
