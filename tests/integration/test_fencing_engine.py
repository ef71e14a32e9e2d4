"""Fencing in the engine and at the commit steps, on the session's real Redis.

The process-level checks (SIGSTOP of Redis or of a worker) are in test_fencing.py; here a test
plays the other worker by writing its token into a running job's in-progress marker.
"""

import asyncio
import contextlib
import inspect
import time
from collections.abc import Callable

import pytest
from pydantic import BaseModel
from redis.asyncio import Redis

from jobs.deps import Deps, Progress
from jobs.fencing import CURRENT, Fence, JobLost
from jobs.models import Draft
from jobs.prospecting.runs import RunLedger
from jobs.prospecting.store import ProspectStore
from jobs.redisreply import reply
from tests.support.recorder import Recorder
from tests.support.runs import open_run
from worker.client import QueueClient
from worker.engine.arqjobs import IN_PROGRESS_KEY_PREFIX, RESULT_KEY_PREFIX
from worker.engine.worker import EngineConfig, EngineWorker
from worker.keys import WorkerKeys
from worker.runtime.fencing import CTX_OWNERSHIP, Ownership
from worker.runtime.progress import read_progress
from worker.runtime.spec import JobSpec
from worker.scheduling.limits import TypeLeases

from .conftest import spec_worker

KEYS = WorkerKeys()
FAST_RENEWAL = EngineConfig(in_progress_ttl_s=3.0, renew_s=0.1)
OTHER = "other-worker:7"


class Step(BaseModel):
    text: str


def gated_spec(runs: list[str], gate: asyncio.Event) -> JobSpec[Step, Step]:
    async def body(deps: Deps, payload: Step, progress: Progress) -> Step:
        runs.append(payload.text)
        await progress.update("first")
        await gate.wait()
        await progress.update("second")  # the next step: a lost job stops here
        return payload

    return JobSpec(name="step", body=body, payload=Step, timeout_s=10, max_tries=3, limit=5)


async def until(condition: Callable[[], object], timeout_s: float = 10) -> None:
    """Wait until `condition()` (or what it awaits to) is true."""
    deadline = time.monotonic() + timeout_s
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


async def stage(redis: Redis, job_id: str) -> str | None:
    progress = await read_progress(redis, KEYS, job_id)
    return None if progress is None else progress.stage


async def stage_is(redis: Redis, job_id: str, expected: str) -> bool:
    return await stage(redis, job_id) == expected


def ended(worker: EngineWorker) -> bool:
    return all(task.done() for task in worker.tasks.values())


async def enqueue_step(client: QueueClient, text: str) -> str:
    job = await client._arq.enqueue_job("step", {"text": text})  # noqa: SLF001 - test shortcut
    assert job is not None
    return job.job_id


def ownership_of(worker: EngineWorker) -> Ownership:
    owned: Ownership = worker.ctx[CTX_OWNERSHIP]
    return owned


async def stop(worker: EngineWorker, running: asyncio.Task[None]) -> None:
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    await worker.close()


async def test_a_job_another_worker_took_stops_at_its_next_step_and_records_nothing(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    runs: list[str] = []
    gate = asyncio.Event()
    recorder = Recorder()
    job_id = await enqueue_step(client, "taken")
    spec = gated_spec(runs, gate)
    worker = spec_worker(
        redis_url, redis, spec, observers=[recorder], burst=False, config=FAST_RENEWAL
    )
    running = asyncio.create_task(worker.main())
    try:
        await until(lambda: stage_is(redis, job_id, "first"))
        marker = IN_PROGRESS_KEY_PREFIX + job_id
        token = await redis.get(marker)
        assert token is not None and token.startswith(ownership_of(worker).owner)
        await redis.set(marker, OTHER, px=60_000)  # the other worker's claim
        await until(lambda: ownership_of(worker).lost_total == 1)
        gate.set()
        await until(lambda: recorder.kinds() == ["lost"])
        await until(lambda: ended(worker))
    finally:
        gate.set()
        await stop(worker, running)
    assert runs == ["taken"]
    assert await stage(redis, job_id) == "first"  # "second" was never written
    # The finish was refused: no result, the job still queued, the marker still the other's.
    assert not await redis.exists(RESULT_KEY_PREFIX + job_id)
    assert await redis.zscore("arq:queue", job_id) is not None
    assert await redis.get(IN_PROGRESS_KEY_PREFIX + job_id) == OTHER


async def test_a_job_whose_marker_lapsed_is_not_claimed_again_while_it_runs_here(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    runs: list[str] = []
    gate = asyncio.Event()
    recorder = Recorder()
    job_id = await enqueue_step(client, "lapsed")
    worker = spec_worker(
        redis_url,
        redis,
        gated_spec(runs, gate),
        observers=[recorder],
        burst=False,
        config=FAST_RENEWAL,
    )
    running = asyncio.create_task(worker.main())
    try:
        await until(lambda: stage_is(redis, job_id, "first"))
        # What a Redis stall leaves: the marker gone and the job due again.
        await redis.delete(IN_PROGRESS_KEY_PREFIX + job_id)
        await redis.zadd("arq:queue", {job_id: 1})
        ticks = worker.loop_tick
        await until(lambda: worker.loop_tick > ticks + 0.05)  # polls went by
        assert runs == ["lapsed"]  # not started a second time alongside the first
        await until(lambda: ownership_of(worker).lost_total == 1)
        gate.set()
        await until(lambda: redis.exists(RESULT_KEY_PREFIX + job_id))
    finally:
        gate.set()
        await stop(worker, running)
    # The first delivery stopped with nothing recorded; the job then ran again, once.
    assert recorder.kinds() == ["lost", "succeeded"]
    assert runs == ["lapsed", "lapsed"]
    report = await client.report(job_id)
    assert report.state == "complete" and report.result == {"text": "lapsed"}


DRAFT = Draft(to="ada@acme.example", subject="Hello", body="Hi Ada", writer="template")


async def test_the_queue_step_and_the_tally_refuse_a_stale_token(redis: Redis) -> None:
    store, ledger = ProspectStore(redis, KEYS), RunLedger(redis, KEYS)
    await open_run(redis, "r1", "c1", keys=KEYS)  # the job is one its run fanned out
    await redis.set("marker:p1", OTHER)
    fenced = CURRENT.set(Fence("marker:p1", "mine:1", lambda: None))
    try:
        with pytest.raises(JobLost, match="queue step"):
            await store.queue_draft(
                run_id="r1", company_id="c1", draft=DRAFT, score=80, day="d", limit=5
            )
        with pytest.raises(JobLost, match="tally"):
            await ledger.record_prospect("r1", "c1", "queued", {"queued": 1}, now_ms=1)
        assert await redis.xlen(KEYS.approvals) == 0
        assert not await redis.exists(KEYS.quota("d"), KEYS.draft("c1"))
        assert await reply(redis.hget(KEYS.run("r1"), "done")) is None
        # The owner's own token goes through.
        await redis.set("marker:p1", "mine:1")
        outcome, _ = await store.queue_draft(
            run_id="r1", company_id="c1", draft=DRAFT, score=80, day="d", limit=5
        )
        recorded = await ledger.record_prospect("r1", "c1", "queued", {"queued": 1}, now_ms=1)
    finally:
        CURRENT.reset(fenced)
    assert (outcome, recorded) == ("queued", "recorded")
    assert await redis.xlen(KEYS.approvals) == 1


async def test_a_lost_job_leaves_the_type_lease_to_its_new_owner(redis: Redis) -> None:
    leases = TypeLeases(redis, KEYS, lease_s=3)
    key = KEYS.type_leases("step")
    await redis.set("marker:j1", "mine:1")
    fenced = CURRENT.set(Fence("marker:j1", "mine:1", lambda: None))
    try:
        await leases.take("step", "j1", 2)
        await redis.set("marker:j1", OTHER)  # taken: the lease (same job id) is theirs now
        await leases.drop("j1")
        assert await redis.zscore(key, "j1") is not None
        await redis.set("marker:j1", "mine:1")
        await leases.take("step", "j1", 2)
        await leases.drop("j1")  # still ours: dropped
        assert await redis.zscore(key, "j1") is None
    finally:
        CURRENT.reset(fenced)
