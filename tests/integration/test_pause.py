"""Pause and resume on real worker processes: a pause stops new starts within a second while
running jobs finish, `stats` says so, and a paused type waits (no try spent) while other types
run."""

import asyncio
import signal
import time
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from jobs.deps import FanoutJob
from jobs.models import ProspectJob
from settings import Settings
from tests.conftest import Figures
from tests.integration.test_priorities import companies, results
from tests.support.cli import cli_in_process
from tests.support.fake_providers import FakeProviders
from tests.support.faults import FaultPlan
from tests.support.processes import WorkerProcess, env_for
from tests.support.runs import project_enqueuer
from worker.client import QueueClient
from worker.keys import WorkerKeys
from worker.registry import job_specs
from worker.scheduling.pause import REFRESH_S

KEYS = WorkerKeys()


async def started_since(redis: Redis, prefix: str, since_s: float) -> int:
    return sum(r["st"] > since_s * 1000 for r in (await results(redis, prefix)).values())


@pytest.mark.slow
async def test_pause_stops_new_starts_within_a_second_and_resume_goes_on(
    redis_url: str, redis: Redis, fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    fake_providers.configure("llm", FaultPlan(latency_s=0.3))
    sample = companies()
    await project_enqueuer(redis).enqueue_many(
        [
            FanoutJob(
                job_id=f"prospect:pause:{rank}",
                function="process_prospect",
                payload=ProspectJob(run_id="pause", company=sample[rank - 1], rank=rank).model_dump(
                    mode="json"
                ),
                priority="hot",
                rank=rank,
            )
            for rank in range(1, 201)
        ]
    )
    env = env_for(redis_url, **fake_providers.env(), PW_MAX_JOBS="4")
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        while len(await results(redis, "prospect:pause:")) < 5:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.02)
        assert cli_in_process(env, "pause").returncode == 0
        paused_at = time.time()
        await asyncio.sleep(2.0)  # the window in which nothing may start after the first second
        late_starts = await started_since(redis, "prospect:pause:", paused_at + 1.0)
        still_running = [key async for key in redis.scan_iter("arq:in-progress:*")]
        stats = orjson.loads(cli_in_process(env, "stats", "--json").stdout)
        done_while_paused = len(await results(redis, "prospect:pause:"))
        assert cli_in_process(env, "resume").returncode == 0
        resumed_at = time.time()
        while not await started_since(redis, "prospect:pause:", resumed_at):
            assert time.time() - resumed_at < 5, "nothing started after resume"
            await asyncio.sleep(0.02)
        resume_s = time.time() - resumed_at

        # One type paused: prospects wait, a cleanup job runs.
        assert cli_in_process(env, "pause", "--type", "process_prospect").returncode == 0
        type_paused_at = time.time()
        await asyncio.sleep(1.2)
        cleanup = cli_in_process(env, "enqueue", "cleanup", "--wait", "--timeout", "20")
        prospects_after = await started_since(redis, "prospect:pause:", type_paused_at + 1.0)
        tries = [key async for key in redis.scan_iter(KEYS.tries("*"))]
        assert cli_in_process(env, "resume").returncode == 0
    finally:
        worker.terminate()
    figures(
        "pause",
        done_before_resume=done_while_paused,
        started_later_than_1s_after_pause=late_starts,
        running_2s_after_pause=len(still_running),
        first_start_after_resume_s=round(resume_s, 3),
        prospects_started_while_type_paused=prospects_after,
    )
    assert late_starts == 0
    assert still_running == []  # the jobs running at the pause finished
    assert stats["paused"] is True
    assert cleanup.returncode == 0, cleanup.stderr
    assert prospects_after == 0
    assert tries == []  # deferring a paused type spends no try


@pytest.mark.slow
async def test_a_worker_draining_after_sigterm_takes_no_new_job_whatever_the_switch_says(
    redis_url: str, redis: Redis, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    # The pause switch is read twice a second and used to turn arq's allow_pick_jobs back on,
    # so a worker finishing its running jobs after SIGTERM started new ones meanwhile.
    fake_providers.configure("llm", FaultPlan(latency_s=4))
    env = env_for(
        redis_url, **fake_providers.env(), PW_ICP='{"min_score": 0}', PW_SHUTDOWN_GRACE_S="30"
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    client = await QueueClient.connect(
        settings := Settings(REDIS_URL=redis_url), specs=job_specs(settings)
    )
    sample = companies()
    payload = ProspectJob(run_id="drain", company=sample[0], rank=1).model_dump(mode="json")
    try:
        worker.wait_ready()
        await project_enqueuer(redis).enqueue_many(
            [FanoutJob(job_id="prospect:drain:1", function="process_prospect", payload=payload)]
        )
        while not await redis.exists(KEYS.progress("prospect:drain:1")):  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # written by the worker process once the job runs
        worker.send(signal.SIGTERM)
        while "shutdown on SIGTERM" not in worker.output(current=True):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        late = [await client.enqueue("cleanup")]  # wakes the worker
        await asyncio.sleep(2 * REFRESH_S)  # past a read of the pause switch
        late.append(await client.enqueue("cleanup"))
        assert worker.wait(60) == 0, worker.output()
    finally:
        await client.close()
        if worker.running:
            worker.kill()
    # The running job finished; the jobs enqueued during the drain wait for the next worker.
    prospect = orjson.loads(await redis.get("arq:result:prospect:drain:1"))
    assert prospect["s"] is True
    for job_id in late:
        assert not await redis.exists(f"arq:result:{job_id}")
        assert await redis.zscore("arq:queue", job_id) is not None
