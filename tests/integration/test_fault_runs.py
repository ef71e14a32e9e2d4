"""The outcomes issue's fault tests, on real processes: `arq worker.WorkerSettings` workers, a
real `redis-server` that is killed and restarted, and a loopback fake of the providers that
injects faults. What was lost or duplicated is counted at the far end: the approval stream, the
quota counter, the run's hash, the dead-letter stream and the fake provider's request log.

Each test reports its figures; they are printed together at the end of the run ("figures").
"""

import asyncio
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from jobs.models import RunSummary
from jobs.prospecting.runs import RunLedger
from jobs.redisreply import reply
from settings import RecoverySettings
from tests.conftest import Figures
from tests.support.fake_providers import FakeProviders
from tests.support.fault_env import marker_env, retry_env
from tests.support.faults import FaultPlan
from tests.support.processes import RedisServer, WorkerProcess, env_for, run_cli
from tests.support.runs import start_daily_run, wait_until_done
from worker.keys import WorkerKeys

KEYS = WorkerKeys()
GOOD_CLEANUP = b'{"t": null, "f": "cleanup", "a": [], "k": {}, "et": 1}'
MAX_TRIES = 6
FAST_RETRIES = retry_env(max_tries=MAX_TRIES, base_delay_s=0.05, max_delay_s=0.5)


async def run_through_the_cli(
    env: dict[str, str], redis: Redis, tmp_path: Path
) -> tuple[str, int, str]:
    """One daily run on a worker started for it, as an operator runs it: `enqueue --wait`
    returns once every prospect has ended. The run's id (the only run in Redis), then the
    worker's exit code and log."""
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.wait_ready()
    try:
        waited = run_cli(env, "enqueue", "daily_prospect_queue", "--wait", timeout=240)
    finally:
        code, output = worker.stop()
    assert waited.returncode == 0, waited.stderr
    [run_key] = [key async for key in redis.scan_iter("pw:run:????-??-??")]
    return run_key.removeprefix("pw:run:"), code, output


async def far_end(redis: Redis, run_id: str) -> dict[str, Any]:
    """What Redis holds, independent of the workers' own view."""
    entries = await redis.xrange(KEYS.approvals)
    companies = Counter(fields["company_id"] for _, fields in entries)
    letters = [fields for _, fields in await redis.xrange(KEYS.dead_letters)]
    summary = await RunLedger(redis, KEYS).summary(run_id)
    assert summary is not None
    return {
        "summary": summary,
        "approvals": sum(companies.values()),
        "duplicates": sum(count - 1 for count in companies.values()),
        "quota": int(await redis.get(KEYS.quota(run_id)) or 0),
        "dead_letters": letters,
        "lost": summary.total - summary.done,
    }


def assert_nothing_lost(found: dict[str, Any]) -> None:
    summary: RunSummary = found["summary"]
    assert summary.state == "complete", summary
    assert found["lost"] == 0
    assert found["duplicates"] == 0
    assert found["approvals"] == found["quota"] == summary.queued
    # Every prospect that did not end done is in the dead-letter stream, with its reason.
    prospect_letters = [f for f in found["dead_letters"] if f["function"] == "process_prospect"]
    assert len(prospect_letters) == summary.failed
    assert all(letter["error"] for letter in prospect_letters)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_sigkill_mid_run_then_restart_loses_nothing_and_recovers_within_30_s(
    redis_url: str, redis: Redis, fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    fake_providers.configure("llm", FaultPlan(latency_s=0.3))
    # A short in-progress TTL (renewed at least as often, relative to it, as the default) so the
    # test does not wait out the default 20 s; the bound below is the 30 s promise less the default.
    ttl_s = 5.0
    env = env_for(
        redis_url,
        **fake_providers.env(),
        PW_JOBS__PROCESS_PROSPECT__LIMIT="8",
        **marker_env(ttl_s, renew_s=1),
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.wait_ready()
    run_id = await start_daily_run(redis_url)
    await wait_until_done(redis, run_id, done=10)
    in_flight = [
        key.removeprefix("arq:in-progress:")
        async for key in redis.scan_iter("arq:in-progress:prospect:*")
    ]
    assert in_flight, "the kill must land with prospect jobs in flight"
    worker.kill()
    killed_at = time.monotonic()
    worker.start()  # what Kubernetes does: a new worker, right away
    try:
        while not all([await redis.exists(f"arq:result:{job_id}") for job_id in in_flight]):
            assert time.monotonic() - killed_at < 60, "the killed worker's jobs never ran again"
            await asyncio.sleep(0.1)
        recovery_s = time.monotonic() - killed_at
        summary = await wait_until_done(redis, run_id, done=75)
    finally:
        code, output = worker.stop()
    assert code == 0, output
    found = await far_end(redis, run_id)
    llm_calls = sum(fake_providers.far_end.counts("llm").values())
    figures(
        "sigkill",
        jobs=summary.total,
        in_flight_at_kill=len(in_flight),
        queued=found["approvals"],
        dead_lettered=summary.failed,
        duplicates=found["duplicates"],
        lost=found["lost"],
        llm_calls=llm_calls,
        drafted=summary.drafted,
        recovery_s=round(recovery_s, 1),
    )
    assert_nothing_lost(found)
    assert summary.failed == 0 and found["approvals"] == 50
    # Recovery is the TTL plus a restart and a poll: that overhead must fit in what the default
    # TTL leaves of the 30 s promise, so the default recovers within 30 s.
    assert recovery_s - ttl_s <= 30 - RecoverySettings().in_progress_ttl_s


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("persistent", [True, False], ids=["aof", "no-persistence"])
async def test_a_redis_restart_mid_run(
    persistent: bool, fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    fake_providers.configure("llm", FaultPlan(latency_s=0.2))
    with RedisServer(tmp_path / "redis", persistent=persistent) as server:
        # A job whose in-progress marker outlived the crash runs again when the marker lapses
        # (1 run in 3 or so): 5 s here rather than the default 20 s.
        env = env_for(
            server.url,
            **fake_providers.env(),
            **FAST_RETRIES,
            **marker_env(ttl_s=5, renew_s=1),
        )
        worker = WorkerProcess(env, tmp_path / "worker.log")
        worker.wait_ready()
        redis = Redis.from_url(server.url, decode_responses=True)
        try:
            run_id = await start_daily_run(server.url)
            await wait_until_done(redis, run_id, done=10)
            server.kill()  # a crash: no shutdown save either way
            down_at = time.monotonic()
            await asyncio.sleep(2)
            server.start()
            back_at = time.monotonic()
            if persistent:
                summary = await wait_until_done(redis, run_id, done=75, timeout_s=120)
                found = await far_end(redis, run_id)
                assert_nothing_lost(found)
                assert found["approvals"] == 50
                completed_s = time.monotonic() - back_at
            else:
                # Everything was in memory: the run, its queue and the quota are gone. The
                # worker itself must come back and take new work without a hand on it.
                assert await RunLedger(redis, KEYS).summary(run_id) is None
                second = await start_daily_run(server.url)
                summary = await wait_until_done(redis, second, done=75, timeout_s=120)
                completed_s = time.monotonic() - back_at
            assert worker.running, worker.output()
        finally:
            code, output = worker.stop()
            await redis.aclose()
    figures(
        f"redis-restart persistent={persistent}",
        down_s=round(back_at - down_at, 1),
        completed_after_restart_s=round(completed_s, 1),
        done=summary.done,
        queued=summary.queued,
        failed=summary.failed,
        worker_exit=code,
    )
    assert code == 0, output
    assert "Redis is back after" in output


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_provider_faults_end_every_prospect_done_or_dead_lettered(
    redis_url: str, redis: Redis, fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    plan = FaultPlan(server_error=0.2, rate_limited=0.1, timeout=0.05, retry_after_s=1, hold_s=1.5)
    for endpoint in ("email_finder", "llm"):
        fake_providers.configure(endpoint, plan)
    env = env_for(redis_url, **fake_providers.env(timeout_s=0.5), **FAST_RETRIES)
    run_id, code, output = await run_through_the_cli(env, redis, tmp_path)
    found = await far_end(redis, run_id)
    far = fake_providers.far_end
    faults = far.faults()
    figures(
        "provider-faults",
        jobs=found["summary"].total,
        requests=sum(far.counts().values()),
        faults_served=dict(faults),
        queued=found["approvals"],
        dead_lettered=found["summary"].failed,
        duplicates=found["duplicates"],
        lost=found["lost"],
        early_retries=len(far.early_retries()),
    )
    assert code == 0, output
    assert faults["server_error"] and faults["rate_limited"] and faults["timeout"]
    assert_nothing_lost(found)
    assert far.early_retries() == []  # no call came before a 429's Retry-After had passed


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_hundred_poison_messages_of_each_kind_among_good_jobs(
    redis_url: str, redis: Redis, fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    now = int(time.time() * 1000)
    kinds = {
        "bad-bytes": b"\xff\x00 not json",
        "bad-envelope": b'{"task": "daily_prospect_queue"}',
        "bad-kwargs": b'{"t": null, "f": "cleanup", "a": [], "k": [1], "et": 1}',
        "unknown-function": b'{"t": null, "f": "no_such_job", "a": [], "k": {}, "et": 1}',
        "invalid-payload": b'{"t": null, "f": "cleanup", "a": [{"surprise": 1}], "k": {}, "et": 1}',
    }
    async with redis.pipeline(transaction=False) as pipe:
        for kind, body in kinds.items():
            for n in range(100):
                pipe.set(f"arq:job:{kind}-{n}", body)
                pipe.zadd("arq:queue", {f"{kind}-{n}": now})
        await pipe.execute()
    raw = Redis.from_url(redis_url)  # bytes: ids that are not UTF-8
    await raw.zadd("arq:queue", {b"\xff\xfe-" + str(n).encode(): now for n in range(100)})
    await raw.aclose()
    for n in range(100):  # deliveries spent: workers kept dying on these
        await redis.set(f"arq:job:spent-{n}", GOOD_CLEANUP)
        await redis.set(f"arq:retry:spent-{n}", 50)
        await redis.zadd("arq:queue", {f"spent-{n}": now})
    good = [await redis_enqueue_cleanup(redis, n, now) for n in range(50)]

    env = env_for(redis_url, **fake_providers.env())
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.wait_ready()
    try:
        deadline = time.monotonic() + 120
        while await redis.zcard("arq:queue"):
            assert worker.running, worker.output()
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        results = [await redis.exists(f"arq:result:{job_id}") for job_id in good]
    finally:
        code, output = worker.stop()
    letters = [fields for _, fields in await redis.xrange(KEYS.dead_letters)]
    by_kind = Counter(letter["job_id"].split("-")[0] for letter in letters)
    figures(
        "poison",
        poison_written=700,
        dead_lettered=len(letters),
        good_jobs=len(good),
        good_finished=sum(results),
        worker_exit=code,
    )
    assert code == 0, output
    assert len(letters) == 700
    assert all(letter["kind"] in ("poison", "failed") for letter in letters)
    assert by_kind["spent"] == 100
    assert sum(results) == len(good)


async def redis_enqueue_cleanup(redis: Redis, n: int, now: int) -> str:
    job_id = f"good{n}"
    await redis.set(f"arq:job:{job_id}", GOOD_CLEANUP)
    await redis.zadd("arq:queue", {job_id: now})
    return job_id


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_sigterm_with_jobs_in_flight_loses_none_and_completes_none_twice(
    redis_url: str, redis: Redis, fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    # A draft takes 2 s at the LLM, twice the grace: the jobs running at the signal are still
    # mid-body when the grace ends, so they are cancelled and re-queued.
    fake_providers.configure("llm", FaultPlan(latency_s=2.0))
    env = env_for(
        redis_url,
        **fake_providers.env(),
        PW_JOBS__PROCESS_PROSPECT__LIMIT="40",
        PW_SHUTDOWN_GRACE_S="1",
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.wait_ready()
    run_id = await start_daily_run(redis_url)
    await wait_until_done(redis, run_id, done=5)
    # The signal must find jobs mid-draft with over the grace period to go: wait for three
    # drafts asked for in the last 0.5 s (the first wave may end just as done reaches 5).
    deadline = time.monotonic() + 30
    while sum(time.monotonic() - at < 0.5 for at in fake_providers.far_end.held("llm")) < 3:
        assert time.monotonic() < deadline, "no drafts were asked for after the first wave"
        await asyncio.sleep(0.01)
    code = worker.terminate()
    cancelled = worker.output().count("cancelled, will be run again")
    worker.start()
    try:
        summary = await wait_until_done(redis, run_id, done=75)
    finally:
        second_code, output = worker.stop()
    found = await far_end(redis, run_id)
    outcomes = await reply(redis.hgetall(KEYS.run_outcomes(run_id)))
    figures(
        "sigterm",
        jobs=summary.total,
        cancelled_at_shutdown=cancelled,
        queued=found["approvals"],
        dead_lettered=summary.failed,
        duplicates=found["duplicates"],
        lost=found["lost"],
        outcomes_recorded=len(outcomes),
    )
    assert (code, second_code) == (0, 0), output
    assert cancelled > 0  # the premise: the signal came mid-job
    assert_nothing_lost(found)
    assert summary.failed == 0 and found["approvals"] == 50
    assert len(outcomes) == summary.total  # one outcome per prospect, none twice


@pytest.mark.timeout(300)
@pytest.mark.slow
async def test_bodies_that_are_not_json_are_retried_and_end_almost_no_prospect(
    redis_url: str, redis: Redis, fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    # One answer in ten is cut short or a proxy's HTML page, at both per-prospect providers.
    for endpoint in ("email_finder", "llm"):
        fake_providers.configure(endpoint, FaultPlan(unreadable=0.1))
    env = env_for(redis_url, **fake_providers.env(), **FAST_RETRIES, PW_DAILY_LIMIT="200")
    run_id, code, output = await run_through_the_cli(env, redis, tmp_path)
    found = await far_end(redis, run_id)
    summary: RunSummary = found["summary"]
    far = fake_providers.far_end
    faults = far.faults()
    most_calls = max(max(far.counts(endpoint).values()) for endpoint in ("email_finder", "llm"))
    figures(
        "unreadable-bodies",
        prospects=summary.total,
        unreadable_served=faults["truncated"] + faults["html"],
        dead_lettered=summary.failed,
        most_calls_for_one_prospect=most_calls,
    )
    assert code == 0, output
    assert faults["truncated"] and faults["html"]  # the premise: the fault was served
    assert summary.total >= 100
    assert_nothing_lost(found)
    assert summary.failed <= summary.total // 100
    # Bounded: no prospect asked a provider more often than its job's tries.
    assert most_calls <= MAX_TRIES


def running_jobs(log: str) -> set[str]:
    """The job ids the worker's log shows started more often than ended: running now."""
    starts = Counter(re.findall(r"job start \S+ (\S+) try", log))
    ends = Counter(re.findall(r"job end \S+ (\S+) try", log))
    return {job_id for job_id, count in starts.items() if count > ends[job_id]}


async def wait_idle(redis: Redis, timeout_s: float = 120) -> None:
    """Until no job is queued, deferred or running: every job the run's tally could still hear
    from."""
    deadline = time.monotonic() + timeout_s
    while (
        await redis.zcard("arq:queue")
        or await redis.zcard(KEYS.deferred)
        or [key async for key in redis.scan_iter("arq:in-progress:*")]
    ):
        assert time.monotonic() < deadline, "jobs still queued or running"
        await asyncio.sleep(0.05)


@pytest.mark.timeout(240)
@pytest.mark.slow
async def test_an_emptied_redis_leaves_the_next_runs_tally_exact(
    fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    # Drafts take 1.5 s, so the kill finds jobs mid-draft that end after Redis is back, empty.
    fake_providers.configure("llm", FaultPlan(latency_s=1.5))
    with RedisServer(tmp_path / "redis", persistent=False) as server:
        env = env_for(
            server.url,
            **fake_providers.env(),
            **FAST_RETRIES,
            PW_RECOVERY__HEALTH_INTERVAL_S="0.2",
            **marker_env(ttl_s=3, renew_s=1),
            PW_LOG_LEVEL="DEBUG",  # each try's start: what running_jobs reads
        )
        worker = WorkerProcess(env, tmp_path / "worker.log")
        worker.wait_ready()
        redis = Redis.from_url(server.url, decode_responses=True)
        try:
            await start_daily_run(server.url)
            deadline = time.monotonic() + 60
            while len(fake_providers.far_end.held("llm")) < 3:
                assert time.monotonic() < deadline, "no drafts in flight to be cut off"
                await asyncio.sleep(0.01)
            cut_drafts = len(fake_providers.far_end.held("llm"))
            server.kill()
            in_flight = running_jobs(worker.output())
            assert in_flight, "the kill found no job running: nothing was cut off"
            server.start()  # empty: no persistence
            await redis.connection_pool.disconnect()  # the test's own connections died too
            # Only to know when the cut-off jobs have ended (and written what they would).
            deadline = time.monotonic() + 60
            while running_jobs(worker.output()) & in_flight:
                assert time.monotonic() < deadline, worker.output()[-3000:]
                await asyncio.sleep(0.05)
            # And the worker has nothing of the lost run left: its own report says no job is
            # running, written after its last batch started (jobs it had taken but not begun).
            await wait_idle(redis)
            while "j_ongoing=0 " not in "".join(
                [await redis.get(key) or "" async for key in redis.scan_iter("pw:health-check:*")]
            ):
                assert time.monotonic() < deadline, worker.output()[-3000:]
                await asyncio.sleep(0.05)
            stale_runs = [key async for key in redis.scan_iter("pw:run:*")]
            stale_approvals = await redis.xlen(KEYS.approvals)

            second_started = time.monotonic()
            run_id = await start_daily_run(server.url)
            summary = await wait_until_done(redis, run_id, done=1)
            await wait_idle(redis)
            summary = await RunLedger(redis, KEYS).summary(run_id) or summary
            found = await far_end(redis, run_id)
            outcomes = await reply(redis.hgetall(KEYS.run_outcomes(run_id)))
            plan = await RunLedger(redis, KEYS).load_plan(run_id)
            assert plan is not None
            log = worker.output()
            refused = log.count("refused: run")
            # A cut-off job whose marker lapsed while Redis was away stops as lost (fencing)
            # before its queue step; one that got that far is refused there. Either way it
            # wrote nothing for the lost run, and said so.
            stopped = len(re.findall(r"process_prospect \S+ stopped, nothing recorded", log))
        finally:
            code, output = worker.stop()
            await redis.aclose()
    planned = {company.id for company in plan.chosen}
    drafts = [s for s in fake_providers.far_end.snapshot("llm") if s.arrived >= second_started]
    drafted_twice = [key for key, n in Counter(s.key for s in drafts).items() if n > 1]
    figures(
        "emptied-redis",
        in_flight_at_kill=len(in_flight),
        drafts_cut_off=cut_drafts,
        stale_run_hashes=len(stale_runs),
        stale_approvals=stale_approvals,
        refused_logged=refused,
        stopped_as_lost=stopped,
        planned=len(planned),
        total=summary.total,
        done=summary.done,
        outcomes=len(outcomes),
        approvals=found["approvals"],
        quota=found["quota"],
    )
    assert code == 0, output
    assert cut_drafts >= 3  # the premise: jobs were cut off mid-draft
    assert stale_runs == [] and stale_approvals == 0  # nothing written for the lost run
    assert refused + stopped >= cut_drafts  # each cut-off draft wrote nothing, and said so
    missing = planned - set(outcomes)
    lines = [line for line in output.splitlines() if any(m in line for m in missing)]
    assert summary.state == "complete", "\n".join(lines)
    assert summary.done == summary.total == len(planned)
    assert set(outcomes) == planned  # every planned prospect ended, in this run, once
    assert_nothing_lost(found)
    assert drafted_twice == []  # no prospect drafted twice once the next run began
