"""A Redis outage longer than every interval of the worker leaves a JSON log that is all JSON:
each background failure logged once, through the project's logger, never a raw traceback."""

import asyncio
import re
import signal
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from jobs.keys import Keys
from tests.conftest import Figures
from tests.support.fake_providers import FakeProviders
from tests.support.fault_env import marker_env, retry_env
from tests.support.faults import FaultPlan
from tests.support.processes import RedisServer, WorkerProcess, env_for
from tests.support.runs import start_daily_run, wait_until_done

KEYS = Keys()
SHORT = {
    "PW_LOG_FORMAT": "json",
    # 30 prospects: enough to be mid-run through the outage, with the LLM's second of latency.
    "PW_DAILY_LIMIT": "20",
    **marker_env(ttl_s=3, renew_s=0.5),
    "PW_RECOVERY__HEALTH_INTERVAL_S": "0.5",
    "PW_RECOVERY__FINISH_PATIENCE_S": "2",
    "PW_METRICS_SAMPLE_S": "0.5",
    "PW_HEALTH_STALE_S": "2",
    **retry_env(base_delay_s=0.05, max_delay_s=0.5),
}
# Longer than every interval above: the marker's life, a dozen renewals, samples and health
# checks, and the patience of a job's finishing, so jobs end with their bookkeeping failed.
OUTAGE_S = 8


@pytest.mark.timeout(180)
@pytest.mark.parametrize("outage", ["killed", "stalled"])
@pytest.mark.slow
async def test_a_redis_outage_leaves_only_json_lines_in_the_log(
    outage: str, fake_providers: FakeProviders, tmp_path: Path, figures: Figures
) -> None:
    fake_providers.configure("llm", FaultPlan(latency_s=1.0))
    with RedisServer(tmp_path / "redis", persistent=True) as server:
        env = env_for(server.url, **fake_providers.env(), **SHORT)
        worker = WorkerProcess(env, tmp_path / "worker.log")
        worker.wait_ready()
        redis = Redis.from_url(server.url, decode_responses=True)
        try:
            run_id = await start_daily_run(server.url)
            await wait_until_done(redis, run_id, done=3)
            server.kill() if outage == "killed" else server.send(signal.SIGSTOP)
            down = time.monotonic()
            # Down for the whole outage, the worker running all along (no sleep in its place:
            # the test only waits for the outage to have lasted).
            while time.monotonic() - down < OUTAGE_S:
                assert worker.running, worker.output()[-3000:]
                await asyncio.sleep(0.1)
            server.start() if outage == "killed" else server.send(signal.SIGCONT)
            await redis.connection_pool.disconnect()
            await wait_until_done(redis, run_id, done=30, timeout_s=120)
        finally:
            code, output = worker.stop()
            await redis.aclose()
    lines = [line for line in output.splitlines() if line.strip()]
    not_json = [line for line in lines if not parses(line)]
    tracebacks = [line for line in lines if "Traceback (most recent call last)" in line]
    never_retrieved = [line for line in lines if "never retrieved" in line]
    tasks = Counter(re.findall(r"\(task ([^)]+)\)", "\n".join(never_retrieved)))
    figures(
        f"outage-logs {outage}",
        outage_s=OUTAGE_S,
        lines=len(lines),
        not_json=len(not_json),
        never_retrieved=len(never_retrieved),
        with_traceback=len(tracebacks),
    )
    assert code == 0, output[-3000:]
    assert not_json == [], "\n".join(not_json[:40])
    # Each task that failed unseen (jobs whose finishing gave up while Redis was away) is
    # logged once, as the project's line, naming the task.
    assert len(tasks) == len(never_retrieved)
    assert all(count == 1 for count in tasks.values())
    assert all(
        orjson.loads(line)["logger"].startswith("prospect_worker.") for line in never_retrieved
    )


def parses(line: str) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False
