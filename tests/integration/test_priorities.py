"""Priorities with aging, on real worker processes: a reply (`process_reply`, at its own
class) starts before a backlog of 10,000 prospect jobs, prospects start in ICP rank order, and
the oldest cold job is overtaken only by hot jobs that became due within its aging bound. Start
and enqueue times are read back from arq's own result records."""

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from jobs.clients.discovery import CompanyRecord, to_company
from jobs.clients.standins import load_sample_data
from jobs.deps import FanoutJob
from jobs.models import Company, Priority, ProspectJob
from settings import Settings
from tests.conftest import Figures
from tests.support.cli import cli_in_process
from tests.support.fake_providers import FakeProviders
from tests.support.faults import FaultPlan
from tests.support.processes import WorkerProcess, env_for
from tests.support.runs import project_enqueuer
from worker.client import QueueClient
from worker.keys import WorkerKeys
from worker.registry import job_specs
from worker.scheduling.fanout import BulkEnqueuer
from worker.scheduling.queueorder import QueueOrder

KEYS = WorkerKeys()
QUEUE = "arq:queue"
INBOUND_REPLY = {
    "headers": "From: Pat <pat@acme.example>\r\nSubject: Re: hello\r\n"
    "Message-ID: <r1@mail.acme.example>\r\nIn-Reply-To: <unknown@example>\r\n",
    "text": "Thanks, please take me off your list.",
}


def companies() -> list[Company]:
    found = [
        to_company(CompanyRecord.model_validate(c.record)) for c in load_sample_data().companies
    ]
    return [company for company in found if company is not None]


async def results(redis: Redis, prefix: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    async for key in redis.scan_iter(f"arq:result:{prefix}*", count=1000):
        raw = await redis.get(key)
        if raw is not None:
            found[key.removeprefix("arq:result:")] = orjson.loads(raw)
    return found


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_reply_starts_before_a_backlog_of_10000_prospects_which_go_in_rank_order(
    redis_url: str, redis: Redis, fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    fake_providers.configure("llm", FaultPlan(latency_s=0.1))
    sample = companies()
    backlog = [
        FanoutJob(
            job_id=f"prospect:backlog:{rank}",
            function="process_prospect",
            payload=ProspectJob(
                run_id="backlog", company=sample[(rank - 1) % len(sample)], rank=rank
            ).model_dump(mode="json"),
            priority="hot",
            rank=rank,
        )
        # Enqueued worst rank first: the queue, not the enqueue order, must give rank order.
        for rank in range(10_000, 0, -1)
    ]
    assert (await project_enqueuer(redis).enqueue_many(backlog)).count("added") == 10_000
    env = env_for(redis_url, **fake_providers.env(), PW_MAX_JOBS="2")
    worker = WorkerProcess(env, tmp_path / "worker.log")
    client = await QueueClient.connect(
        settings := Settings(REDIS_URL=redis_url), specs=job_specs(settings)
    )
    try:
        worker.wait_ready()
        while len(await results(redis, "prospect:backlog:")) < 10:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.02)
        # An inbound reply, enqueued as an application does: no priority given, so it gets
        # its job type's own class (reply, the first).
        enqueued_at = time.time()
        reply = await client.enqueue("process_reply", INBOUND_REPLY)
        while not await redis.exists(f"arq:result:{reply}"):
            assert time.time() - enqueued_at < 30, "the reply never ran"
            await asyncio.sleep(0.01)
    finally:
        await client.close()
        worker.terminate()
    done = await results(redis, "prospect:backlog:")
    reply_result = orjson.loads(await redis.get(f"arq:result:{reply}"))
    reply_start_s = reply_result["st"] / 1000 - enqueued_at
    overtook = [r for r in done.values() if enqueued_at * 1000 < r["st"] < reply_result["st"]]
    ranks = sorted(int(job_id.rsplit(":", 1)[1]) for job_id in done)
    figures(
        "reply first",
        backlog=10_000,
        prospects_done=len(done),
        reply_start_s=round(reply_start_s, 3),
        prospects_started_between=len(overtook),
    )
    assert reply_result["s"] is True and reply_result["r"]["kind"] == "unsubscribe"
    # At most the ones already read when the reply came: one per slot of the worker.
    assert len(overtook) <= 2
    # Prospects ran best rank first: exactly the top ranks, whatever order they were enqueued.
    assert ranks == list(range(1, len(ranks) + 1))


async def enqueue_cleanups(jobs: BulkEnqueuer, prefix: str, count: int, priority: Priority) -> None:
    await jobs.enqueue_many(
        [
            FanoutJob(job_id=f"{prefix}:{n}", function="cleanup", payload={}, priority=priority)
            for n in range(count)
        ]
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_the_oldest_cold_job_is_overtaken_only_within_its_aging_bound(
    redis_url: str, redis: Redis, tmp_path: Path, figures: Figures
) -> None:
    step_s = 0.4
    jobs = project_enqueuer(redis, step_s)
    env = env_for(redis_url, PW_MAX_JOBS="1", PW_PRIORITY_STEP_S=str(step_s))
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        await enqueue_cleanups(jobs, "hot-early", 50, "hot")
        await enqueue_cleanups(jobs, "cold", 1, "cold")
        # A steady stream of hot jobs, faster than one slot drains them, for 6 bounds.
        began = time.monotonic()
        batch = 0
        while time.monotonic() - began < 6 * step_s:
            await enqueue_cleanups(jobs, f"hot-{batch}", 20, "hot")
            batch += 1
            await asyncio.sleep(0.02)
        while not await redis.exists("arq:result:cold:0"):
            assert time.monotonic() - began < 60, "the cold job never ran"
            await asyncio.sleep(0.02)
    finally:
        worker.terminate()
    cold = orjson.loads(await redis.get("arq:result:cold:0"))
    hot = list((await results(redis, "hot-")).values())
    ahead = [r for r in hot if r["st"] < cold["st"]]
    bound_ms = 2 * step_s * 1000  # hot is two classes above cold
    later_ahead = [r for r in ahead if r["et"] > cold["et"]]
    figures(
        "aging",
        step_s=step_s,
        hot_enqueued=len(hot) + await redis.zcard(QUEUE),
        hot_ahead_of_cold=len(ahead),
        of_those_enqueued_after_it=len(later_ahead),
        latest_overtaker_ms_after_cold=max((r["et"] - cold["et"] for r in later_ahead), default=0),
        cold_wait_s=round((cold["st"] - cold["et"]) / 1000, 3),
        bound_s=2 * step_s,
    )
    assert cold["s"] is True
    assert later_ahead, "the stream of hot jobs must overtake the cold one at first"
    # ...but only hot jobs that came within the aging bound after it.
    assert all(r["et"] - cold["et"] < bound_ms for r in later_ahead)


async def test_the_cli_enqueues_by_priority_name(redis_url: str, redis: Redis) -> None:
    before_ms = time.time() * 1000
    done = cli_in_process(env_for(redis_url), "enqueue", "cleanup", "--priority", "reply")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    score = await redis.zscore(QUEUE, job_id)
    shift = 4 * 600_000  # reply: four steps of the default 10 minutes ahead of now
    assert score is not None and before_ms - shift - 1 <= score <= time.time() * 1000 - shift
    assert await redis.get(KEYS.priority(job_id)) == str(shift)
    refused = cli_in_process(env_for(redis_url), "enqueue", "cleanup", "--priority", "urgent")
    assert refused.returncode == 2


async def test_a_deferred_enqueue_with_a_class_waits_for_its_time_then_takes_its_class(
    redis_url: str, redis: Redis
) -> None:
    client = await QueueClient.connect(
        settings := Settings(REDIS_URL=redis_url), specs=job_specs(settings)
    )
    try:
        before_ms = time.time() * 1000
        job_id = await client.enqueue("cleanup", defer_s=30, priority="reply")
        after_ms = time.time() * 1000
    finally:
        await client.close()
    shift = 4 * 600_000
    # Not runnable before it is due: scored at its due time (not due less the class's head
    # start, which is in the past), and waiting in the deferred set for its class.
    score = await redis.zscore(QUEUE, job_id)
    assert score is not None and before_ms + 30_000 - 1 <= score <= after_ms + 30_000
    assert await redis.zscore(KEYS.deferred, job_id) == score
    # Once due, a worker's promotion puts it in its class.
    order = QueueOrder(redis, KEYS, queue_name=QUEUE)
    promoted, _ = await order.promote(int(score))
    assert promoted == 1
    assert await redis.zscore(QUEUE, job_id) == score - shift


async def test_a_paused_types_job_goes_back_behind_the_due_jobs_not_in_its_class(
    redis_url: str, redis: Redis
) -> None:
    client = await QueueClient.connect(
        settings := Settings(REDIS_URL=redis_url), specs=job_specs(settings)
    )
    try:
        paused = await client.enqueue("cleanup", priority="reply")
        waiting = await client.enqueue("cleanup", priority="maintenance")
    finally:
        await client.close()
    order = QueueOrder(redis, KEYS, queue_name=QUEUE)
    now_ms = int(time.time() * 1000)
    # In its class, a deferred job waits for promotion back to the head of the queue ...
    assert await order.reschedule(paused, now_ms, 1_000) is True
    assert await redis.zscore(KEYS.deferred, paused) == now_ms + 1_000
    # ... a paused type's is not promoted: it stays behind every job due before it.
    await redis.zrem(KEYS.deferred, paused)
    assert await order.reschedule(paused, now_ms, 1_000, in_class=False) is False
    assert await redis.zscore(KEYS.deferred, paused) is None
    await order.promote(now_ms + 2_000)
    assert await redis.zrange(QUEUE, 0, -1) == [waiting, paused]
