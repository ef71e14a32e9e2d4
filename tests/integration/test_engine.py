"""The engine on a real Redis with test jobs: retries, poison payloads, progress, fan-out."""

import asyncio
from typing import Any

import orjson
import pytest
from arq import Retry
from pydantic import BaseModel
from redis.asyncio import Redis

from jobs.deps import Deps, FanoutJob, Progress
from jobs.errors import PermanentError, TransientError
from settings import Settings
from worker.client import QueueClient
from worker.engine.arqjobs import ABORT_SET, RETRY_KEY_PREFIX
from worker.engine.serializer import JobFailed, deserialize, serialize
from worker.engine.worker import CTX_ORDER, CTX_PAUSE, CTX_WAKE, EngineWorker
from worker.keys import WorkerKeys
from worker.runtime.progress import read_progress
from worker.runtime.runtime import Runtime
from worker.runtime.spec import JobSpec
from worker.scheduling.fanout import BulkEnqueuer
from worker.scripts import find_scripts

from .conftest import drain, spec_runtime, spec_worker

KEYS = WorkerKeys()


class Echo(BaseModel):
    text: str
    fail_times: int = 0
    permanent: bool = False


class Echoed(BaseModel):
    text: str
    tries: int


def echo_spec(
    attempts: dict[str, int],
    gate: asyncio.Event | None = None,
    *,
    limit: int = 2,
    timeout_s: float = 5,
) -> JobSpec[Echo, Echoed]:
    async def body(deps: Deps, payload: Echo, progress: Progress) -> Echoed:
        attempts[payload.text] = attempts.get(payload.text, 0) + 1
        await progress.update("working", done=1, total=2, seen=attempts[payload.text])
        if gate is not None:
            await gate.wait()
        if payload.permanent:
            raise PermanentError("the far side said 404")
        if attempts[payload.text] <= payload.fail_times:
            raise TransientError("flaky", retry_after=0.05)
        return Echoed(text=payload.text, tries=attempts[payload.text])

    return JobSpec(
        name="echo", body=body, payload=Echo, timeout_s=timeout_s, max_tries=3, limit=limit
    )


def echo_runtime(redis: Redis, spec: JobSpec[Any, Any]) -> Runtime:
    return spec_runtime(redis, spec)


def echo_worker(
    redis_url: str, redis: Redis, spec: JobSpec[Any, Any], *, burst: bool = True
) -> EngineWorker:
    return spec_worker(redis_url, redis, spec, burst=burst)


async def enqueue_echo(client: QueueClient, **payload: Any) -> str:
    job = await client._arq.enqueue_job("echo", payload)  # noqa: SLF001 - test-only shortcut
    assert job is not None
    return job.job_id


async def test_transient_errors_retry_with_backoff_then_succeed(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    attempts: dict[str, int] = {}
    job_id = await enqueue_echo(client, text="a", fail_times=2)
    worker = echo_worker(redis_url, redis, echo_spec(attempts))
    await worker.main()
    await worker.close()
    report = await client.report(job_id)
    assert report.state == "complete"
    assert report.result == {"text": "a", "tries": 3}
    assert worker.jobs_retried == 2
    assert await redis.xlen(KEYS.dead_letters) == 0


async def test_retries_spent_and_permanent_errors_dead_letter(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    attempts: dict[str, int] = {}
    flaky = await enqueue_echo(client, text="flaky", fail_times=10)
    gone = await enqueue_echo(client, text="gone", permanent=True)
    worker = echo_worker(redis_url, redis, echo_spec(attempts))
    await worker.main()
    await worker.close()

    assert attempts == {"flaky": 3, "gone": 1}  # max_tries 3; a permanent error is not retried
    flaky_report, gone_report = await client.report(flaky), await client.report(gone)
    assert flaky_report.state == gone_report.state == "failed"
    assert gone_report.error == "PermanentError: the far side said 404"
    letters = {f["job_id"]: f for _, f in await redis.xrange(KEYS.dead_letters)}
    assert set(letters) == {flaky, gone}
    assert letters[flaky]["tries"] == "3"
    assert orjson.loads(letters[gone]["payload"])["text"] == "gone"


async def test_a_poison_payload_fails_at_once_and_is_kept(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    attempts: dict[str, int] = {}
    job_id = await enqueue_echo(client, wrong_field=1)
    worker = echo_worker(redis_url, redis, echo_spec(attempts))
    await worker.main()
    await worker.close()

    assert attempts == {}
    report = await client.report(job_id)
    assert report.state == "failed"
    assert report.error is not None
    assert report.error.startswith("InvalidPayload: ")
    assert "text" in report.error
    [(_, letter)] = await redis.xrange(KEYS.dead_letters)
    assert orjson.loads(letter["payload"]) == {"args": [{"wrong_field": 1}], "kwargs": {}}


async def test_an_unknown_job_name_fails_clearly(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    job = await client._arq.enqueue_job("no_such_job")  # noqa: SLF001
    assert job is not None
    worker = echo_worker(redis_url, redis, echo_spec({}))
    await worker.main()
    await worker.close()
    report = await client.report(job.job_id)
    assert report.state == "failed"
    assert report.error is not None
    assert "no_such_job" in report.error


async def test_progress_is_readable_while_the_job_runs(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    gate = asyncio.Event()
    job_id = await enqueue_echo(client, text="slow")
    worker = echo_worker(redis_url, redis, echo_spec({}, gate))
    running = asyncio.create_task(worker.main())
    try:
        for _ in range(500):
            progress = await read_progress(redis, KEYS, job_id)
            if progress is not None and progress.stage == "working":
                break
            await asyncio.sleep(0.01)
        report = await client.report(job_id)
        assert report.state == "in_progress"
        assert report.progress is not None
        assert (report.progress.stage, report.progress.done, report.progress.total) == (
            "working",
            1,
            2,
        )
        assert report.progress.counters == {"seen": 1}
    finally:
        gate.set()
        await running
        await worker.close()
    final = await client.report(job_id)
    assert final.state == "complete"
    assert final.result == {"text": "slow", "tries": 1}


async def test_bulk_enqueue_is_atomic_per_job_and_deduplicates(redis: Redis) -> None:
    enqueuer = BulkEnqueuer(redis, queue_name="arq:queue", serializer=serialize, expires_ms=60_000)
    first = FanoutJob("p:1", "process_prospect", {"x": 1}, claim_key="pw:inflight:c1")
    same_id = FanoutJob("p:1", "process_prospect", {"x": 2}, claim_key="pw:inflight:c1")
    same_claim = FanoutJob(
        "p:other-day:1", "process_prospect", {"x": 3}, claim_key="pw:inflight:c1"
    )
    fresh = FanoutJob("p:2", "process_prospect", {"x": 4})

    assert await enqueuer.enqueue_many([first, same_id, same_claim, fresh]) == [
        "added",
        "duplicate",
        "claimed",
        "added",
    ]
    assert await redis.zcard("arq:queue") == 2
    stored = deserialize((await redis.get("arq:job:p:1")).encode())
    assert stored["f"] == "process_prospect" and stored["a"] == [{"x": 1}]
    assert await redis.get("pw:inflight:c1") == "p:1"


async def test_a_type_at_its_limit_is_deferred_without_a_try_or_a_slot(redis: Redis) -> None:
    attempts: dict[str, int] = {}
    spec = echo_spec(attempts, limit=1, timeout_s=0.2)
    runtime = echo_runtime(redis, spec)
    # Another replica's running job holds the type's only lease.
    other = echo_runtime(redis, spec)
    await other.leases.take(spec.name, "elsewhere", spec.limit)
    await redis.set("arq:retry:w", 1)  # arq counted this delivery before the job ran
    with pytest.raises(Retry) as deferred:
        await runtime.execute(
            spec, job_id="w", delivery=1, due_ms=None, args=({"text": "waiter"},), kwargs={}
        )
    assert attempts == {}  # it never ran
    assert deferred.value.defer_score is not None and 0 < deferred.value.defer_score <= 750
    assert await redis.get(KEYS.tries("w")) is None  # no try of ours spent
    assert await redis.get("arq:retry:w") == "0"  # and arq's delivery taken back
    progress = await read_progress(redis, KEYS, "w")
    assert progress is not None and progress.stage == "deferred"
    assert progress.counters["deferred_by"] == "type_limit"
    # It holds no lease: the type's set in Redis has the other replica's job only.
    assert await redis.zrange(KEYS.type_leases("echo"), 0, -1) == ["elsewhere"]
    await other.leases.drop("elsewhere")
    result = await runtime.execute(
        spec, job_id="w", delivery=2, due_ms=None, args=({"text": "w"},), kwargs={}
    )
    assert result == {"text": "w", "tries": 1}
    assert await redis.zcard(KEYS.type_leases("echo")) == 0


async def test_the_test_worker_is_wired_as_production(
    redis_url: str, redis: Redis, settings: Settings
) -> None:
    def wiring(worker: EngineWorker) -> dict[str, object]:
        ctx, runtime = worker.ctx, worker.ctx["runtime"]
        return {
            "order": type(ctx.get(CTX_ORDER)),
            "pause": type(ctx.get(CTX_PAUSE)),
            "wake": ctx.get(CTX_WAKE),
            "leases": type(runtime.leases),
            "dead_letters": type(runtime.dead_letters),
        }

    production = await drain(settings)
    await redis.script_flush()
    worker = echo_worker(redis_url, redis, echo_spec({}))
    await worker.main()
    await worker.close()

    assert wiring(worker) == wiring(production)
    assert wiring(worker)["wake"] == KEYS.wake
    runtime = worker.ctx["runtime"]
    owners = (runtime.leases, runtime.dead_letters, worker.ctx[CTX_ORDER])
    shas = [script.sha for script in find_scripts(*owners)]
    assert shas and all(await redis.script_exists(*shas))  # loaded at start, as production does


async def test_a_job_aborted_before_it_started_never_runs_and_its_abort_mark_is_taken(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    """The claim does arq's read of the job, its abort mark included (worker/engine/claimread.py):
    arq still fails an aborted job before running it, and no `running` stage is written."""
    attempts: dict[str, int] = {}
    job = await client._arq.enqueue_job("echo", {"text": "a"})  # noqa: SLF001 - test-only
    assert job is not None
    aborting = asyncio.create_task(job.abort(timeout=10, poll_delay=0.05))
    await asyncio.sleep(0.2)  # arq's abort marks the job before it waits for the result
    worker = echo_worker(redis_url, redis, echo_spec(attempts))
    worker.allow_abort_jobs = True
    await worker.main()
    await worker.close()
    with pytest.raises(
        JobFailed, match="CancelledError"
    ):  # arq's abort, as this serializer says it
        await aborting
    assert attempts == {}
    assert await read_progress(redis, KEYS, job.job_id) is None
    assert await redis.zscore(ABORT_SET, job.job_id) is None
    assert worker.jobs_failed == 1


async def test_the_claim_writes_the_running_stage_with_the_delivery(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    """The claim takes the job's lease and writes its `running` stage, with arq's delivery count
    as its try: what the runtime wrote itself before the body ran."""
    seen: list[Any] = []

    async def body(deps: Deps, payload: Echo, progress: Progress) -> Echoed:
        seen.append(await read_progress(redis, KEYS, job_id))
        return Echoed(text=payload.text, tries=1)

    spec = JobSpec(name="echo", body=body, payload=Echo, timeout_s=5, max_tries=3, limit=2)
    job_id = await enqueue_echo(client, text="a")
    await redis.set(RETRY_KEY_PREFIX + job_id, 1)  # one delivery before: a crash
    worker = echo_worker(redis_url, redis, spec)
    await worker.main()
    await worker.close()
    [progress] = seen
    assert progress is not None
    assert (progress.stage, progress.job_try, progress.counters) == ("running", 2, {})


async def test_a_job_over_arqs_max_tries_gets_no_running_stage(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    """arq fails a delivery over its max tries before running it: the claim, which counts the
    delivery, writes no `running` stage for it (it would never be replaced)."""
    attempts: dict[str, int] = {}
    job_id = await enqueue_echo(client, text="a")
    worker = echo_worker(redis_url, redis, echo_spec(attempts))
    arq_tries = worker.functions["echo"].max_tries
    assert arq_tries is not None
    await redis.set(RETRY_KEY_PREFIX + job_id, arq_tries)  # the next delivery is one too many
    await worker.main()
    await worker.close()
    assert attempts == {}
    assert await read_progress(redis, KEYS, job_id) is None
    assert (await client.report(job_id)).state == "failed"
