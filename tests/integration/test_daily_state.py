"""The daily run as the metrics and `stats` see it, read from the run hashes in Redis."""

from datetime import date

from redis.asyncio import Redis

from worker.keys import WorkerKeys
from worker.observability.daily_state import read_daily_state

KEYS = WorkerKeys()
TODAY = date(2026, 12, 2)


async def test_no_run_in_the_last_days_reads_as_never(redis: Redis) -> None:
    await redis.set(KEYS.quota("2026-12-02"), 7)
    state = await read_daily_state(redis, KEYS, today=TODAY, limit=50)
    assert (state.state, state.run_id, state.last_start_ts, state.last_success_ts) == (
        "none",
        None,
        0.0,
        0.0,
    )
    assert (state.quota_used, state.quota_limit) == (7, 50)


async def test_a_running_run_today_keeps_yesterdays_success(redis: Redis) -> None:
    # The run hashes as the ledger writes them (jobs/prospecting/runs.py).
    yesterday = {"started_ms": 1_000_000, "finished_ms": 1_002_000, "fanout_closed": 1}
    yesterday |= {"discovered": 3, "total": 1, "done": 1, "drafted": 1, "queued": 1}
    today = {"started_ms": 2_000_000, "fanout_closed": 1}
    today |= {"discovered": 9, "total": 2, "done": 1, "failed": 1}
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(KEYS.run("2026-12-01"), mapping=yesterday)
        pipe.hset(KEYS.run("2026-12-02"), mapping=today)
        await pipe.execute()
    state = await read_daily_state(redis, KEYS, today=TODAY, limit=50)
    assert state.run_id == "2026-12-02"
    assert state.state == "running"
    assert state.last_start_ts == 2_000.0
    assert state.last_success_ts == 1_002.0  # yesterday's run finished; today's has not
    assert (state.discovered, state.fanned_out, state.failed, state.queued) == (9, 2, 1, 0)
