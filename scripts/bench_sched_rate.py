"""Case `rate` of `scripts/bench_scheduling.py`: a run of prospects under an LLM limit per minute.

- pw: `--prospects` process_prospect jobs of one run (distinct companies, the sample's cycled;
  `PW_DAILY_LIMIT` and `PW_ICP` min_score 0 so that every prospect with a contact is drafted)
  queued with the fan-out's bulk enqueue, drained by `--workers` `arq worker.WorkerSettings`
  processes whose discovery, email finder and LLM are one fake provider on 127.0.0.1
  (tests/support/fake_providers.py) and whose LLM is limited to `--llm-per-min`
  (`PW_LLM__REQUESTS_PER_MINUTE`). The provider records each request's arrival.
- arq: a plain arq worker makes the same number of chat completions to a fresh fake provider
  with no limiter: what the provider would see without one.

Figures, from the provider's record: the most LLM requests that arrived in any 60 s window
(pw must never exceed the limit), and how close the run came to the limit's bound. The bound:
n requests under "at most L in any 60 s" cannot span less than floor((n - 1) / L) x 60 s from
first to last, so achieved = that bound / the observed span (1.0 is the limit used to the full).
"""

import asyncio
import time
from typing import Any

import orjson
from arq.jobs import serialize_job
from redis.asyncio import Redis

from jobs.keys import Keys
from scripts.bench_sched_backlog import QUEUE, enqueue_prospects, sample_companies
from scripts.bench_sched_common import worker
from tests.support.fake_providers import FakeProviders
from worker.connections import JOB_EXPIRES_MS

WINDOW_S = 60.0
RUN_ID = "ratebench"


def bound_span_s(requests: int, per_window: int) -> float:
    return (requests - 1) // per_window * WINDOW_S


def provider_figures(fake: FakeProviders, per_window: int) -> dict[str, Any]:
    llm = fake.far_end.snapshot("llm")
    span = llm[-1].arrived - llm[0].arrived if len(llm) > 1 else 0.0
    bound = bound_span_s(len(llm), per_window)
    return {
        "llm_requests": len(llm),
        "max_per_60s": fake.far_end.max_in_window(WINDOW_S, "llm"),
        "span_s": span,
        "bound_span_s": bound,
        "achieved": bound / span if span else float("nan"),
        "non_200": sum(1 for s in llm if s.status != 200),
        "per_10s": per_bucket([s.arrived for s in llm], 10.0),
    }


def per_bucket(times: list[float], bucket_s: float) -> list[int]:
    """Requests in each `bucket_s` from the first one: how the limit's windows were used."""
    if not times:
        return []
    counts = [0] * (int((times[-1] - times[0]) // bucket_s) + 1)
    for t in times:
        counts[int((t - times[0]) // bucket_s)] += 1
    return counts


async def measure_pw(
    url: str, prospects: int, per_min: int, workers: int, timeout_s: float
) -> dict[str, Any]:
    redis = Redis.from_url(url, decode_responses=True)
    await redis.flushall()
    with FakeProviders() as fake:
        env = {
            **fake.env(),
            "PW_LLM__REQUESTS_PER_MINUTE": str(per_min),
            "PW_DAILY_LIMIT": str(max(prospects, 50)),
            "PW_ICP": '{"min_score": 0}',
        }
        processes = [worker("pw", url, f"rate-pw-{n}", **env) for n in range(workers)]
        try:
            for process in processes:
                process.wait_ready()
            began = time.monotonic()
            await enqueue_prospects(redis, RUN_ID, prospects)
            done = 0
            while done < prospects:
                if time.monotonic() - began > timeout_s:
                    raise TimeoutError(f"{done} of {prospects} prospects ended in {timeout_s} s")
                await asyncio.sleep(0.5)
                done = int(await redis.hget(Keys().run(RUN_ID), "done") or 0)
            wall = time.monotonic() - began
            tally = await redis.hgetall(Keys().run(RUN_ID))
        finally:
            for process in processes:
                process.terminate()
            await redis.aclose()
        figures = provider_figures(fake, per_min)
    return {
        **figures,
        "wall_s": wall,
        "queued": int(tally.get("queued", 0)),
        "failed": int(tally.get("failed", 0)),
    }


async def measure_arq(url: str, requests: int, concurrency: int) -> dict[str, Any]:
    redis = Redis.from_url(url)
    await redis.flushall()
    names = [c.domain.split(".")[0] for c in sample_companies()]
    with FakeProviders() as fake:
        process = worker(
            "arq", url, "rate-arq", BENCH_PROVIDER_URL=fake.url, BENCH_MAX_JOBS=str(concurrency)
        )
        try:
            process.wait_ready()
            began = time.monotonic()
            now_ms = int(time.time() * 1000)
            async with redis.pipeline(transaction=False) as pipe:
                for i in range(requests):
                    data = serialize_job(
                        "draft", (names[i % len(names)],), {}, None, now_ms, serializer=orjson.dumps
                    )
                    pipe.psetex(f"arq:job:draft:{i}", JOB_EXPIRES_MS, data)
                    pipe.zadd(QUEUE, {f"draft:{i}": now_ms})
                await pipe.execute()
            while len(fake.far_end.snapshot("llm")) < requests:  # noqa: ASYNC110 - a thread counts
                await asyncio.sleep(0.1)
            wall = time.monotonic() - began
        finally:
            process.terminate()
            await redis.aclose()
        figures = provider_figures(fake, requests)  # no limit: the bound is all at once
    return {**figures, "wall_s": wall}


async def run(
    url: str, prospects: int, per_min: int, workers: int, concurrency: int, timeout_s: float
) -> None:
    pw = await measure_pw(url, prospects, per_min, workers, timeout_s)
    arq = await measure_arq(url, pw["llm_requests"], concurrency)
    print(
        f"\nrate-limited run: {prospects:,} prospects, LLM limit {per_min}/min, pw on {workers} "
        f"worker processes; arq: one plain worker, {concurrency} jobs at once, no limiter"
    )
    print(f"{'':38} {'arq 0.28':>10} {'pw':>10}")
    rows = [
        ("LLM requests at the provider", arq["llm_requests"], pw["llm_requests"], "{:10.0f}"),
        (
            f"max LLM requests in any 60 s (<= {per_min})",
            arq["max_per_60s"],
            pw["max_per_60s"],
            "{:10.0f}",
        ),
        ("first to last LLM request (s)", arq["span_s"], pw["span_s"], "{:10.1f}"),
        ("fastest the limit allows (s)", float("nan"), pw["bound_span_s"], "{:10.1f}"),
        ("achieved / bound", float("nan"), pw["achieved"], "{:10.3f}"),
        ("wall time, enqueue to last end (s)", arq["wall_s"], pw["wall_s"], "{:10.1f}"),
    ]
    for name, a, p, fmt in rows:
        shown = fmt.format(a) if a == a else f"{'-':>10}"  # nan: no limit on the arq side
        print(f"{name:38} {shown} {fmt.format(p)}")
    print(f"pw: LLM requests per 10 s from the first: {' '.join(map(str, pw['per_10s']))}")
    over = arq["max_per_60s"] / per_min
    print(
        f"pw: {pw['queued']} drafts queued, {pw['failed']} failed, {pw['non_200']} non-200 "
        f"answers; without a limiter the provider saw {over:.1f}x its limit in one window"
    )
