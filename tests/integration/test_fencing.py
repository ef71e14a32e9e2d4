"""Fencing on real processes: a Redis stall and a worker stall, each longer than the in-progress
marker, never turn into a job run twice at once, a provider call for a job the caller no longer
owns, or a succeeded job recorded as failed.

The marker lives 3 s here (a setting), so a stall of 7 s is well past it. Everything is counted
at the far end: the fake provider's requests (per door, one per worker), the stored results,
the run's outcomes, and each worker's own job lines (a job started while the same worker was
still running it).
"""

import asyncio
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from jobs.clients.standins import load_sample_data
from jobs.keys import Keys, prospect_job_id
from jobs.redisreply import reply
from tests.conftest import Figures
from tests.support.fake_providers import FakeProviders
from tests.support.far_end import Served
from tests.support.fault_env import marker_env
from tests.support.faults import Endpoint, FaultPlan
from tests.support.processes import RedisServer, WorkerProcess, env_for
from tests.support.runs import start_daily_run, wait_until_done

KEYS = Keys()
MARKER_S = 3.0
STALL_S = 2 * MARKER_S + 1
SHORT_MARKER = {
    **marker_env(MARKER_S, renew_s=0.75),
    "PW_LOG_FORMAT": "json",
    "PW_LOG_LEVEL": "DEBUG",  # each try's start: the job lines the checks read
    "PW_JOBS__PROCESS_PROSPECT__LIMIT": "10",
    # 36 prospects, at two seconds of calls each and 10 at a time per worker: the stall finds
    # jobs mid-call with more queued behind them for the other worker.
    "PW_DAILY_LIMIT": "24",
}
CALLED = ("email_finder", "llm")  # one call per prospect each, when nothing runs twice
COMPANY_OF_DOMAIN = {c.domain: str(c.record["id"]) for c in load_sample_data().companies}


async def wait_for_calls(fake: FakeProviders, endpoint: Endpoint, door: str) -> None:
    """Until at least 3 calls to `endpoint` through `door` are waiting for their answer."""
    deadline = time.monotonic() + 30
    while len(fake.far_end.held(endpoint, door=door)) < 3:
        assert time.monotonic() < deadline, f"no {endpoint} calls in flight to stall on"
        await asyncio.sleep(0.01)


async def wait_for_results(redis: Redis, run_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """Every prospect job's stored result, once the run has ended and each one is written."""
    summary = await wait_until_done(redis, run_id, done=1, timeout_s=60)
    summary = await wait_until_done(redis, run_id, done=summary.total, timeout_s=timeout_s)
    outcomes: dict[str, str] = await reply(redis.hgetall(KEYS.run_outcomes(run_id)))
    assert len(outcomes) == summary.total
    keys = [f"arq:result:{prospect_job_id(run_id, company)}" for company in outcomes]
    deadline = time.monotonic() + timeout_s
    while not all(await asyncio.gather(*(redis.exists(key) for key in keys))):
        assert time.monotonic() < deadline, "a prospect job's result was never written"
        await asyncio.sleep(0.05)
    results = {
        company: orjson.loads(await redis.get(key))
        for company, key in zip(outcomes, keys, strict=True)
    }
    return {"summary": summary, "outcomes": outcomes, "results": results}


def failed_although_succeeded(found: dict[str, Any]) -> list[str]:
    """Prospects whose run says they ended (queued or skipped) but whose result says failed."""
    return [
        company
        for company, outcome in found["outcomes"].items()
        if outcome != "failed" and found["results"][company]["s"] is False
    ]


def job_lines(log: str) -> list[tuple[float, str, str]]:
    """(wall time, event, job id) of each job start and end a worker logged."""
    lines = []
    for line in log.splitlines():
        if line.startswith("{"):
            event = orjson.loads(line)
            if event.get("event") in ("job_start", "job_end"):
                when = datetime.fromisoformat(event["ts"]).timestamp()
                lines.append((when, event["event"], event["job_id"]))
    return lines


def running_at(log: str, wall: float) -> set[str]:
    """Job ids the worker had started and not ended at `wall` (time.time())."""
    running: Counter[str] = Counter()
    for when, event, job_id in job_lines(log):
        if when > wall:
            break
        running[job_id] += 1 if event == "job_start" else -1
    return {job_id for job_id, count in running.items() if count > 0}


def started_after(log: str, wall: float) -> dict[str, float]:
    """Job id -> the first time the worker started it at or after `wall`."""
    first: dict[str, float] = {}
    for when, event, job_id in job_lines(log):
        if event == "job_start" and when >= wall:
            first.setdefault(job_id, when)
    return first


def repeats_by_job(served: tuple[Served, ...], run_id: str) -> Counter[str]:
    """Provider calls beyond the first for the same prospect and endpoint, per prospect job."""
    per_key = Counter((s.endpoint, s.key) for s in served if s.endpoint in CALLED)
    return Counter(
        {
            prospect_job_id(run_id, COMPANY_OF_DOMAIN[key]): count - 1
            for (_, key), count in per_key.items()
            if count > 1
        }
    )


def started_while_running(log: str) -> list[str]:
    """Job ids one worker started again while it was still running them (its job lines)."""
    running: Counter[str] = Counter()
    twice: set[str] = set()
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        event = orjson.loads(line)
        job_id = event.get("job_id")
        if event.get("event") == "job_start":
            if running[job_id]:
                twice.add(job_id)
            running[job_id] += 1
        elif event.get("event") == "job_end" and running[job_id]:
            running[job_id] -= 1
    return sorted(twice)


def beyond_in_flight(repeats: Counter[str], running: set[str]) -> dict[str, int]:
    """Repeated calls the stall does not excuse: only a job running on the stalled side when
    the stall began may repeat the call it had in flight, and only that one call."""
    return {job: n for job, n in repeats.items() if n > 1 or job not in running}


@pytest.mark.timeout(90)
@pytest.mark.slow
async def test_a_redis_stall_past_the_marker_runs_no_job_twice_and_fails_none_that_succeeded(
    fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    fake_providers.configure("llm", FaultPlan(latency_s=1.0))
    fake_providers.configure("email_finder", FaultPlan(latency_s=1.0))
    with RedisServer(tmp_path / "redis") as server:
        env = env_for(server.url, **fake_providers.env(), **SHORT_MARKER)
        worker = WorkerProcess(env, tmp_path / "worker.log")
        redis = Redis.from_url(server.url, decode_responses=True)
        try:
            worker.wait_ready()
            run_id = await start_daily_run(server.url, timeout_s=60)
            await wait_until_done(redis, run_id, done=5, timeout_s=60)
            # The stall must find jobs looking up emails: once Redis is back they still have
            # the LLM to call, and are still running when their jobs come due again.
            await wait_for_calls(fake_providers, "email_finder", "main")
            server.send(signal.SIGSTOP)
            stalled_wall = time.time()
            await asyncio.sleep(STALL_S)  # the fault itself: Redis answers nothing meanwhile
            server.send(signal.SIGCONT)
            found = await wait_for_results(redis, run_id)
        finally:
            server.send(signal.SIGCONT)
            code, log = worker.stop()
            await redis.aclose()
    repeats = repeats_by_job(fake_providers.far_end.snapshot(), run_id)
    running = running_at(log, stalled_wall)
    wrong = failed_although_succeeded(found)
    twice = started_while_running(log)
    figures(
        "redis-stall",
        jobs=found["summary"].total,
        stall_s=STALL_S,
        marker_s=MARKER_S,
        recorded_failed_although_succeeded=len(wrong),
        started_twice_by_one_worker=len(twice),
        repeated_provider_calls=sum(repeats.values()),
        jobs_running_at_stall=len(running),
    )
    assert code == 0, log[-3000:]
    assert running, "the stall found no job running: nothing was tested"
    assert wrong == [], {company: found["results"][company] for company in wrong}
    assert twice == []
    # A call in flight when Redis stopped may be made again by the job's next delivery;
    # nothing else is called twice.
    assert beyond_in_flight(repeats, running) == {}
    assert found["summary"].failed == 0


@pytest.mark.timeout(90)
@pytest.mark.slow
async def test_a_stalled_worker_calls_nobody_for_jobs_it_lost_and_records_nothing_for_them(
    redis_url: str, redis: Redis, fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    fake_providers.configure("llm", FaultPlan(latency_s=1.0))
    fake_providers.configure("email_finder", FaultPlan(latency_s=1.0))
    fake_providers.open_door("b")
    stalled = WorkerProcess(
        env_for(redis_url, **fake_providers.env(), **SHORT_MARKER), tmp_path / "stalled.log"
    )
    other = WorkerProcess(
        env_for(redis_url, **fake_providers.env(door="b"), **SHORT_MARKER), tmp_path / "b.log"
    )
    try:
        stalled.wait_ready()
        other.wait_ready()
        run_id = await start_daily_run(redis_url, timeout_s=60)
        await wait_until_done(redis, run_id, done=5, timeout_s=60)
        # The stop must find the stalled worker looking up emails: those jobs' next step is
        # the LLM, a call it must not make once it has lost them.
        await wait_for_calls(fake_providers, "email_finder", "main")
        stalled.send(signal.SIGSTOP)
        stalled_wall = time.time()
        await asyncio.sleep(STALL_S)  # the fault: the other worker takes its jobs meanwhile
        stalled.send(signal.SIGCONT)
        resumed_at, resumed_wall = time.monotonic(), time.time()
        found = await wait_for_results(redis, run_id)
    finally:
        if stalled.running:
            stalled.send(signal.SIGCONT)
        code, stalled_log = stalled.stop()
        other_code, other_log = other.stop()
    served = fake_providers.far_end.snapshot()
    repeats = repeats_by_job(served, run_id)
    running = running_at(stalled_log, stalled_wall)
    # Every call the stalled worker made after it resumed must come from a delivery it started
    # after it resumed (a fresh claim), never from one it held before the stall.
    fresh = started_after(stalled_log, resumed_wall)
    for_lost_jobs = [
        s
        for s in served
        if s.door == "main"
        and s.arrived >= resumed_at
        and fresh.get(prospect_job_id(run_id, COMPANY_OF_DOMAIN[s.key]), float("inf"))
        > resumed_wall + (s.arrived - resumed_at)
    ]
    wrong = failed_although_succeeded(found)
    twice = started_while_running(stalled_log) + started_while_running(other_log)
    figures(
        "worker-stall",
        jobs=found["summary"].total,
        stall_s=STALL_S,
        marker_s=MARKER_S,
        recorded_failed_although_succeeded=len(wrong),
        started_twice_by_one_worker=len(twice),
        calls_by_stalled_worker_for_lost_jobs=len(for_lost_jobs),
        repeated_provider_calls=sum(repeats.values()),
        jobs_running_at_stall=len(running),
    )
    assert (code, other_code) == (0, 0), stalled_log[-3000:]
    assert running, "the stall found no job running: nothing was tested"
    assert wrong == [], {company: found["results"][company] for company in wrong}
    assert twice == []
    assert for_lost_jobs == []
    assert beyond_in_flight(repeats, running) == {}
    assert found["summary"].failed == 0
    # Decided once whatever ran twice: one approval per queued prospect, the quota to match.
    entries = await redis.xrange(KEYS.approvals)
    companies = Counter(fields["company_id"] for _, fields in entries)
    assert len(companies) == sum(companies.values()) == found["summary"].queued
