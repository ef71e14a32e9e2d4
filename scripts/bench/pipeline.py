"""Case `pipeline`: prospects of one run through the real job code, on one worker process, with
every provider (discovery, email finder, LLM) a local fake answering in `LATENCY_S`
(tests/support/fake_providers.py, on 127.0.0.1), `PW_MAX_JOBS` and the prospect type's limit
both `CONCURRENCY`; `PW_DAILY_LIMIT` and `PW_ICP` min_score 0 so every prospect with a contact
is drafted. Queued with the fan-out's bulk enqueue; timed from the enqueue to the run's last
prospect (the run's own tally).

- no LLM limit: the makespan against the ideal, total provider time / concurrency (each request
  counted at the provider, `LATENCY_S` each).
- LLM limit of `--llm-per-min` (`PW_LLM__REQUESTS_PER_MINUTE`): the most LLM requests that
  arrived in any 60 s window (never over the limit) and the limit's bound against the span
  observed. n requests under "at most L in any 60 s" cannot span less than floor((n - 1) / L) x
  60 s from first to last: achieved = that bound / the span (1.0: the limit used to the full).

Targets (issue 19): makespan within 10 % of the ideal without the limit; with it, within 5 % of
the limit's bound and never over it in any 60 s window.
"""

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from jobs.keys import Keys
from scripts.bench.backlog import enqueue_prospects
from scripts.bench.context import Context
from scripts.bench.processes import READY_S, pw_worker
from scripts.bench.report import Table
from tests.support.fake_providers import FakeProviders
from tests.support.faults import ENDPOINTS, FaultPlan

WINDOW_S = 60.0
LATENCY_S = 0.2
CONCURRENCY = 200
RUN_ID = "benchrun"
# (prospects, LLM limit per minute)
SIZES = {"full": (2_000, 600), "quick": (500, 600), "tiny": (10, 600)}


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


async def measure(
    url: str, prospects: int, per_min: int | None, timeout_s: float
) -> dict[str, Any]:
    redis = Redis.from_url(url, decode_responses=True)
    await redis.flushall()
    plans = {endpoint: FaultPlan(latency_s=LATENCY_S) for endpoint in ENDPOINTS}
    with FakeProviders(plans) as fake:
        env = {
            **fake.env(),
            "PW_DAILY_LIMIT": str(max(prospects, 50)),
            "PW_ICP": '{"min_score": 0}',
        }
        if per_min is not None:
            env["PW_LLM__REQUESTS_PER_MINUTE"] = str(per_min)
        process = pw_worker(url, "pipeline-pw", CONCURRENCY, **env)
        try:
            process.wait_ready(READY_S)
            began = time.monotonic()
            await enqueue_prospects(redis, RUN_ID, prospects)
            done = 0
            while done < prospects:
                if time.monotonic() - began > timeout_s:
                    raise TimeoutError(f"{done} of {prospects} prospects ended in {timeout_s} s")
                await asyncio.sleep(0.05)
                done = int(await redis.hget(Keys().run(RUN_ID), "done") or 0)
            wall = time.monotonic() - began
            tally = await redis.hgetall(Keys().run(RUN_ID))
        finally:
            process.terminate()
            await redis.aclose()
        requests = sum(len(fake.far_end.snapshot(endpoint)) for endpoint in ENDPOINTS)
        llm = provider_figures(fake, per_min or 10**9)
    ideal = requests * LATENCY_S / CONCURRENCY
    figures = {
        "prospects": prospects,
        "provider requests": requests,
        "makespan, enqueue to last prospect (s)": wall,
        "ideal: provider time / concurrency (s)": ideal,
        "ideal / makespan": ideal / wall,
        "drafts queued": int(tally.get("queued", 0)),
        "prospects failed": int(tally.get("failed", 0)),
        "LLM requests": llm["llm_requests"],
        "most LLM requests in any 60 s": llm["max_per_60s"],
    }
    if per_min is not None:
        figures["the limit's bound, first to last LLM request (s)"] = llm["bound_span_s"]
        figures["first to last LLM request (s)"] = llm["span_s"]
        figures["bound / span"] = llm["achieved"]
    return figures


async def run(ctx: Context) -> list[Table]:
    prospects, per_min = SIZES[ctx.size]
    free, limited = "no LLM limit", f"LLM limit {per_min}/min"
    table = Table(
        "pipeline",
        f"The real pipeline: {prospects:,} prospects, providers answering in "
        f"{LATENCY_S * 1000:.0f} ms, max_jobs {CONCURRENCY}, one worker process",
        [free, limited],
    )
    for round_ in range(ctx.rounds):
        figures = await measure(ctx.url, prospects, None, 900.0)
        ctx.say(f"pipeline round {round_ + 1}: ideal / makespan {figures['ideal / makespan']:.2f}")
        table.add(free, figures)
    # The limited run takes the limit's bound by construction (3 minutes at full size): once.
    table.add(limited, await measure(ctx.url, prospects, per_min, 1800.0))
    table.notes.append(
        f"No limit: median (min-max) of {ctx.rounds} rounds; with the limit: one run. The "
        "worker's HTTP client allows 100 connections (worker/app.py)."
    )
    return [table]
