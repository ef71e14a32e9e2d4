"""The daily run as the metrics and `stats` see it, read from the run hashes in Redis."""

from datetime import date

from redis.asyncio import Redis

from jobs.keys import Keys
from jobs.runs import RunLedger
from worker.daily_state import read_daily_state

KEYS = Keys()
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
    ledger = RunLedger(redis, KEYS)
    await ledger.open("2026-12-01", 1_000_000)
    await ledger.close_fanout("2026-12-01", added=1, discovered=3, skipped={}, now_ms=1_000_500)
    await ledger.tally("2026-12-01", "p1", {"queued": 1, "drafted": 1}, now_ms=1_002_000)
    await ledger.open("2026-12-02", 2_000_000)
    await ledger.close_fanout("2026-12-02", added=2, discovered=9, skipped={}, now_ms=2_000_500)
    await ledger.tally("2026-12-02", "p1", {"failed": 1}, now_ms=2_001_000)
    state = await read_daily_state(redis, KEYS, today=TODAY, limit=50)
    assert state.run_id == "2026-12-02"
    assert state.state == "running"
    assert state.last_start_ts == 2_000.0
    assert state.last_success_ts == 1_002.0  # yesterday's run finished; today's has not
    assert (state.discovered, state.fanned_out, state.failed) == (9, 2, 1)
