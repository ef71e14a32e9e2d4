"""One outcome per job, whoever decides it: the engine's findings, each reproduced on a real Redis.

Every test here failed on the engine before the outcomes work (errors lost their type in a
TaskGroup, arq-side failures left no dead letter, bookkeeping could fail a job, in-progress
markers lived 10 minutes, a job id that is not UTF-8 stopped the worker).
"""

import asyncio
import contextlib
import signal
import time
from contextlib import AsyncExitStack
from typing import Any

import orjson
import pytest
from arq import Retry
from pydantic import BaseModel
from redis.asyncio import Redis

from jobs.deps import Deps, Progress
from jobs.errors import PermanentError, RateLimited, TransientError
from jobs.models import DailyRunRequest
from jobs.prospecting.daily import daily_prospect_queue
from jobs.prospecting.runs import RunLedger
from tests.support.recorder import Recorder
from worker import tasks as worker_tasks
from worker.app import build_deps
from worker.client import QueueClient
from worker.engine.arqjobs import IN_PROGRESS_KEY_PREFIX, JOB_KEY_PREFIX, RETRY_KEY_PREFIX
from worker.engine.serializer import JobFailed
from worker.engine.worker import EngineConfig, EngineWorker
from worker.keys import WorkerKeys
from worker.runtime.deadletter import DeadLetters
from worker.runtime.progress import JobProgress
from worker.runtime.runtime import CTX_CANCELLED, CTX_SPEC, Runtime
from worker.runtime.spec import JobSpec
from worker.scripts import preload_scripts

from .conftest import drain, make_settings, spec_runtime, spec_worker

KEYS = WorkerKeys()


class Work(BaseModel):
    text: str
    group: str | None = None  # "permanent" or "rate_limited": raise an ExceptionGroup
    hold_s: float = 0.0


class Done(BaseModel):
    text: str


def work_spec(recorder: Recorder, calls: list[str], *, max_tries: int = 3) -> JobSpec[Any, Any]:
    async def body(deps: Deps, payload: Work, progress: Progress) -> Done:
        calls.append(payload.text)
        if payload.hold_s:
            await asyncio.sleep(payload.hold_s)
        if payload.group == "permanent":
            async with asyncio.TaskGroup() as group:
                group.create_task(asyncio.sleep(5))
                raise_in = group.create_task(_raise(PermanentError("HTTP 401 from /v2")))
                await raise_in
        if payload.group == "rate_limited":
            async with asyncio.TaskGroup() as group:
                group.create_task(_raise(TransientError("HTTP 503")))
                group.create_task(_raise(RateLimited("HTTP 429", retry_after=0.4)))
        return Done(text=payload.text)

    async def on_failure(deps: Deps, payload: Work, reason: str) -> None:
        recorder.failed_hooks.append(payload.text)

    return JobSpec(
        name="work",
        body=body,
        payload=Work,
        timeout_s=10,
        max_tries=max_tries,
        limit=5,
        on_failure=on_failure,
    )


async def _raise(exc: Exception) -> None:
    raise exc


def make_runtime(redis: Redis, spec: JobSpec[Any, Any], recorder: Recorder) -> Runtime:
    return spec_runtime(redis, spec, [recorder])


def work_worker(
    redis_url: str,
    redis: Redis,
    spec: JobSpec[Any, Any],
    recorder: Recorder,
    *,
    burst: bool = True,
    config: EngineConfig | None = None,
) -> EngineWorker:
    return spec_worker(redis_url, redis, spec, observers=[recorder], burst=burst, config=config)


async def drain_work(
    redis_url: str, redis: Redis, spec: JobSpec[Any, Any], recorder: Recorder
) -> None:
    """A burst worker runs the queue to empty, retries included."""
    worker = work_worker(redis_url, redis, spec, recorder)
    await worker.main()
    await worker.close()


async def main_past_first_poll(worker: EngineWorker, redis: Redis) -> asyncio.Task[None]:
    """`worker.main()` as a task, once its startup is done, its background tasks run and its
    first poll is over (arq writes its health key at a poll's end)."""
    running = asyncio.create_task(worker.main())
    while not await redis.exists(worker.health_check_key):
        assert not running.done(), running
        await asyncio.sleep(0.01)
    return running


async def letters(redis: Redis) -> dict[str, dict[str, str]]:
    return {fields["job_id"]: fields for _, fields in await redis.xrange(KEYS.dead_letters)}


# --- finding 1: errors keep their type inside a TaskGroup ----------------------------------


async def test_a_permanent_error_in_a_task_group_is_tried_once(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    recorder = Recorder()
    calls: list[str] = []
    spec = work_spec(recorder, calls)
    job = await client._arq.enqueue_job(  # noqa: SLF001 - a plain arq enqueue
        "work", {"text": "p", "group": "permanent"}
    )
    assert job is not None
    await drain_work(redis_url, redis, spec, recorder)
    assert calls == ["p"]
    assert recorder.kinds() == ["failed"]
    letter = (await letters(redis))[job.job_id]
    assert letter["error_type"] == "PermanentError"
    assert letter["error"] == "PermanentError: HTTP 401 from /v2"
    assert recorder.failed_hooks == ["p"]


async def test_a_retry_after_inside_a_task_group_is_honoured(redis: Redis) -> None:
    recorder = Recorder()
    calls: list[str] = []
    spec = work_spec(recorder, calls)
    runtime = make_runtime(redis, spec, recorder)
    with pytest.raises(Retry) as retry:
        await runtime.execute(
            spec,
            job_id="rl",
            delivery=1,
            due_ms=None,
            args=({"text": "rl", "group": "rate_limited"},),
            kwargs={},
        )
    assert retry.value.defer_score is not None and retry.value.defer_score >= 400
    assert recorder.outcomes[-1].error_type == "RateLimited"


async def test_a_retry_after_over_the_cap_is_dead_lettered_not_waited(redis: Redis) -> None:
    recorder = Recorder()
    calls: list[str] = []
    spec = work_spec(recorder, calls)
    runtime = make_runtime(redis, spec, recorder)

    async def long_wait(deps: Deps, payload: Work, progress: Progress) -> Done:
        raise RateLimited("HTTP 429", retry_after=7200)

    capped = JobSpec("work", long_wait, Work, 10, 3, 5)
    with pytest.raises(JobFailed):
        await runtime.execute(
            capped, job_id="cap", delivery=1, due_ms=None, args=({"text": "c"},), kwargs={}
        )
    letter = (await letters(redis))["cap"]
    assert "asked to wait 7200 s, over the 60 s cap" in letter["error"]


# --- finding 2 and 10: failures arq decides, and entries that must not stop the queue ------


async def test_failures_arq_decides_are_dead_lettered_with_their_hooks(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    recorder = Recorder()
    calls: list[str] = []
    spec = work_spec(recorder, calls)
    now = int(time.time() * 1000)
    # Deliveries spent: a job that killed 5 workers (arq's count) before any try failed.
    spent = await client._arq.enqueue_job(  # noqa: SLF001 - a plain arq enqueue
        "work", {"text": "spent"}
    )
    assert spent is not None
    await redis.set(RETRY_KEY_PREFIX + spent.job_id, 5)
    # Expired: queued, but its record is gone.
    await redis.zadd("arq:queue", {"gone-job": now})
    # Bytes that are not a job, and an envelope that is not arq's.
    await redis.set(JOB_KEY_PREFIX + "bad-bytes", b"\xff\x00 not json")
    await redis.set(JOB_KEY_PREFIX + "bad-envelope", b'{"task": "work", "params": {}}')
    await redis.zadd("arq:queue", {"bad-bytes": now, "bad-envelope": now})
    # A function this worker does not run, and kwargs that are not an object.
    unknown = await client._arq.enqueue_job(  # noqa: SLF001 - a plain arq enqueue
        "no_such_job", {"x": 1}
    )
    assert unknown is not None
    await redis.set(JOB_KEY_PREFIX + "bad-kwargs", b'{"f": "work", "a": [], "k": [1], "et": 1}')
    await redis.zadd("arq:queue", {"bad-kwargs": now})
    # A job id that is not UTF-8 (arq's worker used to exit on it, at every restart).
    await redis.zadd("arq:queue", {b"\xff\xfe-id": now})
    good = await client._arq.enqueue_job(  # noqa: SLF001 - a plain arq enqueue
        "work", {"text": "good"}
    )
    assert good is not None

    await drain_work(redis_url, redis, spec, recorder)

    assert calls == ["good"]  # the good job ran; nothing else reached a body
    found = await letters(redis)
    assert found[spent.job_id]["kind"] == "failed"
    assert "max 5 retries exceeded" in found[spent.job_id]["error"]
    assert found["gone-job"]["kind"] == "expired"
    assert found["bad-bytes"]["kind"] == "poison" and "raw" in found["bad-bytes"]
    assert found["bad-envelope"]["kind"] == "poison"
    assert found["bad-kwargs"]["kind"] == "poison"
    assert found[unknown.job_id]["kind"] == "poison"
    assert "no_such_job" in found[unknown.job_id]["error"]
    assert found["\\xff\\xfe-id"]["kind"] == "poison"
    assert len(found) == 7
    # The spent job's failure hook ran (the daily run tallies such a prospect).
    assert recorder.failed_hooks == ["spent"]
    assert sorted(recorder.kinds()) == sorted(
        ["failed", "expired", "poison", "poison", "poison", "poison", "succeeded"]
    )  # the quarantined id is not a job arq started: it has its dead letter, not an outcome
    assert await redis.zcard("arq:queue") == 0
    # arq's own result still says what happened, for `status` and arq's Job API.
    assert (await client.report(unknown.job_id)).state == "failed"


# --- finding 3: the runtime's own writes cannot fail a job ---------------------------------


async def test_bookkeeping_failures_never_turn_a_success_into_a_failure(redis: Redis) -> None:
    recorder = Recorder()
    calls: list[str] = []
    spec = work_spec(recorder, calls)
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # nothing listens there
    runtime = make_runtime(dead, spec, recorder)
    result = await runtime.execute(
        spec, job_id="ok", delivery=1, due_ms=None, args=({"text": "ok"},), kwargs={}
    )
    assert result == {"text": "ok"}
    assert recorder.kinds() == ["succeeded"]
    # A final failure that cannot be recorded keeps the job (a Retry), never drops it.
    with pytest.raises(Retry):
        await runtime.execute(
            spec,
            job_id="lost?",
            delivery=1,
            due_ms=None,
            args=({"text": "p", "group": "permanent"},),
            kwargs={},
        )
    await dead.aclose()


async def test_arq_backstop_timeout_is_dead_lettered_and_a_shutdown_is_a_cancel(
    redis: Redis,
) -> None:
    recorder = Recorder()
    calls: list[str] = []
    spec = work_spec(recorder, calls)
    runtime = make_runtime(redis, spec, recorder)
    await runtime.arq_job_ended(
        {"job_id": "slow", "job_try": 1, CTX_SPEC: spec, CTX_CANCELLED: "timeout"}
    )
    await runtime.arq_job_ended(
        {"job_id": "stopped", "job_try": 1, CTX_SPEC: spec, CTX_CANCELLED: "shutdown"}
    )
    assert recorder.kinds() == ["failed", "cancelled"]
    found = await letters(redis)
    assert list(found) == ["slow"] and "backstop" in found["slow"]["error"]


# --- finding 7: crash recovery, and a cancellation spends no try --------------------------


@pytest.mark.slow
async def test_in_progress_markers_are_short_and_renewed_while_the_job_runs(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    recorder = Recorder()
    calls: list[str] = []
    spec = work_spec(recorder, calls)
    job = await client._arq.enqueue_job(  # noqa: SLF001 - a plain arq enqueue
        "work", {"text": "slow", "hold_s": 5.0}
    )
    assert job is not None
    config = EngineConfig(in_progress_ttl_s=2.0, renew_s=0.5)
    worker = work_worker(redis_url, redis, spec, recorder, config=config)
    running = asyncio.create_task(worker.main())
    key = IN_PROGRESS_KEY_PREFIX + job.job_id
    ttls: list[int] = []
    try:
        for _ in range(10):
            await asyncio.sleep(0.1)
            ttl = await redis.pttl(key)
            if ttl > 0:
                ttls.append(ttl)
        await asyncio.sleep(2.5)  # well past the 2 s marker: only renewal keeps it alive
        assert await redis.pttl(key) > 0
    finally:
        await running
        await worker.close()
    assert ttls and max(ttls) <= 2000
    assert calls == ["slow"]  # a live slow job never ran twice


async def test_a_shutdown_cancellation_spends_no_try(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    recorder = Recorder()
    calls: list[str] = []
    spec = work_spec(recorder, calls, max_tries=1)
    job = await client._arq.enqueue_job(  # noqa: SLF001 - a plain arq enqueue
        "work", {"text": "cut", "hold_s": 0.5}
    )
    assert job is not None
    first = work_worker(redis_url, redis, spec, recorder, burst=False)
    running = asyncio.create_task(first.main())
    while not calls:  # noqa: ASYNC110 - the job body appends from the worker's task
        await asyncio.sleep(0.01)
    # As arq's own shutdown does: the poll loop stops first, then `close` cancels the running
    # job, as a shutdown past its grace would. (Closed the other way round, the pool closed
    # under a poll that was mid-transaction, which reconnected to UNWATCH and leaked that
    # connection: a ResourceWarning that failed whichever test collected it.)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await first.close()
    assert recorder.kinds() == ["cancelled"]
    assert await redis.get(KEYS.tries(job.job_id)) is None

    second = work_worker(redis_url, redis, spec, recorder)
    await second.main()
    await second.close()
    assert calls == ["cut", "cut"]
    assert recorder.kinds() == ["cancelled", "succeeded"]  # max_tries 1, still not spent


@pytest.mark.slow
async def test_a_shutdown_signal_mid_batch_starts_nothing_more_and_cuts_nothing_off(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    """arq's start_jobs takes a whole batch one id at a time and never looks at the signal:
    jobs it started after SIGTERM were missing from the set the grace period waited for, so
    they were cut off once the others ended and ran again (2 LLM calls drafted twice in CI).
    The engine claims a batch in one step (Batch claims): a signal lands before it or after
    it, and every job it claimed is one the grace period waits for."""
    recorder = Recorder()
    calls: list[str] = []
    spec = work_spec(recorder, calls)
    worker = work_worker(redis_url, redis, spec, recorder, burst=False)
    worker.poll_delay_s = 600  # the test starts the batch itself, as one poll would
    worker._job_completion_wait = 10  # noqa: SLF001 - the grace period, as settings give it
    running = await main_past_first_poll(worker, redis)  # the next poll is 600 s away
    ids: list[str] = []
    for n in range(4):  # under the type's limit of 5
        job = await client._arq.enqueue_job(  # noqa: SLF001 - a plain arq enqueue
            "work", {"text": f"job-{n}", "hold_s": 0.2 + 0.3 * n}
        )
        assert job is not None
        ids.append(job.job_id)
    batch = asyncio.create_task(worker.start_jobs([job_id.encode() for job_id in ids]))
    while not worker.tasks:  # noqa: ASYNC110 - the first job is started, the batch goes on
        await asyncio.sleep(0)
    worker.handle_sig_wait_for_completion(signal.SIGTERM)
    await batch
    while any(not task.done() for task in worker.tasks.values()):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await worker.close()
    started = len(calls)
    assert recorder.kinds() == ["succeeded"] * started  # every started job ran to its end
    assert started == len(ids)  # the batch was claimed whole, before the signal

    second = work_worker(redis_url, redis, spec, recorder)
    await second.main()
    await second.close()
    assert sorted(calls) == sorted(f"job-{n}" for n in range(4))  # each ran once, none again


async def test_a_claimed_job_leaves_the_head_in_the_claim_itself(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    """Started jobs leave the queue's head, so an idle replica reads runnable ids there. The
    move used to be a step after the batch's claims: a job that had ended its try and been put
    back runnable meanwhile (a deferral of ~0 s) was moved all the same and waited out the
    in-progress TTL (5 of 1,869 prospects in the rate benchmark). The claim moves each job in
    the step that claims it, before it can run (Batch claims)."""
    recorder = Recorder()
    worker = work_worker(redis_url, redis, work_spec(recorder, []), recorder, burst=False)
    worker.poll_delay_s = 600  # the test starts the batch itself, as one poll would
    running = await main_past_first_poll(worker, redis)
    try:
        job = await client._arq.enqueue_job("work", {"text": "held", "hold_s": 1.0})  # noqa: SLF001
        assert job is not None
        queue = worker.queue_name
        enqueued = await redis.zscore(queue, job.job_id)
        assert enqueued is not None
        await worker.start_jobs([job.job_id.encode()])
        assert list(worker.tasks) == [job.job_id]
        moved = await redis.zscore(queue, job.job_id)
        assert moved is not None and moved >= enqueued + 0.5 * worker.in_progress_timeout_s * 1000
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await worker.close()


async def test_a_shutdown_ends_the_promoter_even_as_a_deferral_wakes_it(
    redis_url: str, redis: Redis
) -> None:
    """Python 3.11's `asyncio.wait_for` returns normally when it is cancelled in the step its
    awaitable finishes: a job deferred in the instant of the shutdown's cancel kept the promoter
    looping, and the worker never exited (a fresh-clone CI run: still promoting 6 minutes after
    SIGTERM, when it was killed)."""
    recorder = Recorder()
    worker = work_worker(redis_url, redis, work_spec(recorder, []), recorder, burst=False)
    running = await main_past_first_poll(worker, redis)
    promoter = next(task for task in worker._background if task.get_name() == "promote-deferred")  # noqa: SLF001
    worker._deferred_one.set()  # noqa: SLF001 - a job deferred just now ...
    promoter.cancel()  # ... as the shutdown cancels the background tasks
    try:
        done, _ = await asyncio.wait([promoter], timeout=2)
        assert done and promoter.cancelled()
    finally:
        promoter.cancel()  # on a promoter that swallowed the first one, so the test can end
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await worker.close()


async def test_a_background_task_that_ignores_its_cancel_does_not_keep_the_worker(
    redis_url: str, redis: Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(worker_tasks, "STOP_WAIT_S", 0.2)
    recorder = Recorder()
    worker = work_worker(redis_url, redis, work_spec(recorder, []), recorder, burst=False)
    running = await main_past_first_poll(worker, redis)
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    worker._background.append(asyncio.create_task(stubborn(), name="stubborn"))  # noqa: SLF001
    await asyncio.sleep(0)  # it runs, and is waiting
    running.cancel()
    done, _ = await asyncio.wait([running], timeout=5)
    release.set()
    await worker.close()
    assert done  # main() ended though one task would not
    assert "background task stubborn ignored its cancel" in caplog.text


# --- the dead-letter workflow ---------------------------------------------------------------


async def test_replay_enqueues_with_fresh_tries_and_only_then_leaves_the_stream(
    redis_url: str, redis: Redis, client: QueueClient
) -> None:
    recorder = Recorder()
    calls: list[str] = []
    spec = work_spec(recorder, calls)
    job = await client._arq.enqueue_job(  # noqa: SLF001 - a plain arq enqueue
        "work", {"text": "again", "group": "permanent"}
    )
    assert job is not None
    await drain_work(redis_url, redis, spec, recorder)
    dead_letters = DeadLetters(redis, KEYS, queue_name="arq:queue", job_expires_ms=60_000)
    [letter] = await dead_letters.list(function="work")
    assert letter.job_id == job.job_id and letter.replayable is None

    # Fix the cause (here: the payload), as a person would, and replay.
    fixed = letter.model_copy(update={"payload": {"text": "again"}})
    assert await dead_letters.replay(fixed) == "replayed"
    assert await dead_letters.count() == 0
    # A second replay queues nothing and says the entry was replayed already.
    assert await dead_letters.replay(fixed) == "already_replayed"
    await drain_work(redis_url, redis, spec, recorder)
    assert calls == ["again", "again"]
    assert (await client.report(job.job_id)).state == "complete"
    assert await dead_letters.count() == 0


async def test_poison_is_not_replayable_and_purge_goes_by_age(redis: Redis) -> None:
    dead_letters = DeadLetters(redis, KEYS, queue_name="arq:queue", job_expires_ms=60_000)
    await dead_letters.add(
        job_id="x",
        function="unknown",
        kind="poison",
        error_type="E",
        error="e",
        tries=0,
        raw=b"\xff",
    )
    [letter] = await dead_letters.list()
    assert letter.replayable is not None
    assert await dead_letters.replay(letter) == "not_replayable"
    assert await dead_letters.count() == 1
    assert await dead_letters.purge(older_than_s=3600) == 0
    assert await dead_letters.purge(older_than_s=0) == 1


async def test_a_job_dead_lettered_twice_leaves_one_entry(redis: Redis) -> None:
    dead_letters = DeadLetters(redis, KEYS, queue_name="arq:queue", job_expires_ms=60_000)
    args: dict[str, Any] = {
        "job_id": "twice",
        "function": "work",
        "kind": "failed",
        "error_type": "E",
        "error": "e",
        "tries": 3,
        "payload": {"text": "t"},
    }
    first = await dead_letters.add(**args)
    assert await dead_letters.add(**args) == first
    assert await dead_letters.count() == 1
    stored = orjson.loads((await redis.xrange(KEYS.dead_letters))[0][1]["payload"])
    assert stored == {"text": "t"}


@pytest.mark.slow
async def test_expired_prospect_jobs_are_tallied_so_the_run_completes(
    redis_url: str, redis: Redis
) -> None:
    settings = make_settings(redis_url)
    # The daily run's body on its own (no worker yet), so its prospect jobs stay queued.
    async with AsyncExitStack() as stack:
        deps, pipeline_redis = await build_deps(settings, stack)
        await preload_scripts(pipeline_redis, deps)
        progress = JobProgress(pipeline_redis, KEYS, "daily", 1)
        result = await daily_prospect_queue(deps, DailyRunRequest(), progress)
    queued = list(await redis.zrange("arq:queue", 0, -1))
    assert len(queued) == result.fanned_out == 75
    expired = queued[:3]
    await redis.delete(*[JOB_KEY_PREFIX + job_id for job_id in expired])  # as a TTL would

    await drain(settings)
    summary = await RunLedger(redis, KEYS).summary(result.run_id)
    assert summary is not None
    assert summary.state == "complete"
    assert (summary.done, summary.failed) == (75, 3)
    found = await letters(redis)
    assert sorted(found) == sorted(expired)
    assert {letter["kind"] for letter in found.values()} == {"expired"}


async def test_an_unexpected_error_is_retried_then_dead_lettered_with_its_traceback_logged(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()

    async def buggy(deps: Deps, payload: Work, progress: Progress) -> Done:
        raise KeyError("a bug")

    spec: JobSpec[Any, Any] = JobSpec("work", buggy, Work, 10, 2, 5)
    runtime = make_runtime(redis, spec, recorder)
    with caplog.at_level("ERROR", logger="prospect_worker.runtime"), pytest.raises(Retry):
        await runtime.execute(
            spec, job_id="bug", delivery=1, due_ms=None, args=({"text": "b"},), kwargs={}
        )
    assert any(record.exc_info for record in caplog.records)  # a bug deserves its traceback
    with pytest.raises(JobFailed):
        await runtime.execute(
            spec, job_id="bug", delivery=2, due_ms=None, args=({"text": "b"},), kwargs={}
        )
    assert recorder.kinds() == ["retried", "failed"]
    assert (await letters(redis))["bug"]["error"] == "KeyError: 'a bug'"
