"""The log pieces of issue 15 without Redis: deferrals summarised, repeated warnings held back
with a count, the Redis address with its password masked."""

import asyncio
import logging

import pytest
from arq.connections import RedisSettings

from worker.connections import describe_redis
from worker.engine.startup import StartupFailed, connect
from worker.local.embedded import DEFAULT_HOST, free_port
from worker.observability.job_lines import JobLog
from worker.observability.log_setup import RepeatedWarnings
from worker.runtime.outcomes import JobOutcome


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def deferral(job_id: str, reason: str) -> JobOutcome:
    return JobOutcome(
        job_id=job_id,
        function="process_prospect",
        kind="deferred",
        job_try=1,
        retry_in_s=0.5,
        deferred_by=reason,
        limit_name="process_prospect",
    )


def test_deferrals_are_debug_lines_summarised_by_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="prospect_worker.jobs")
    clock = Clock()
    log = JobLog(summary_s=30, clock=clock)
    for n in range(3):
        log.ended(deferral(f"p{n}", "type_limit"))
    log.ended(deferral("p9", "rate_limit"))
    assert {r.levelno for r in caplog.records} == {logging.DEBUG}
    clock.now += 30
    log.summarise()
    info = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [r.getMessage() for r in info] == [
        "deferred 4 jobs in the last 30 s: rate_limit 1, type_limit 3"
    ]
    log.summarise()  # nothing deferred since: no line
    assert len([r for r in caplog.records if r.levelno == logging.INFO]) == 1


async def test_the_summary_task_summarises_once_more_when_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="prospect_worker.jobs")
    log = JobLog(summary_s=3600)
    task = asyncio.create_task(log.run())
    await asyncio.sleep(0)
    log.ended(deferral("p1", "paused"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "deferred 1 jobs in the last 0 s: paused 1" in caplog.text


def test_a_repeated_warning_shows_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    clock = Clock()
    repeated = RepeatedWarnings(logging.getLogger("pw.test"), 30, clock=clock)
    for _ in range(10):  # ten in 9 s: the first only
        repeated.warning("wake", "lost %s", "it")
        repeated.warning("renew", "not renewed")
        clock.now += 1
    clock.now += 20  # 30 s after the first
    repeated.warning("wake", "lost %s", "it")
    assert [r.getMessage() for r in caplog.records] == [
        "lost it",
        "not renewed",
        "lost it (9 more in the last 30 s)",
    ]
    repeated.clear()  # Redis is back: the next outage starts afresh
    repeated.warning("renew", "not renewed")
    assert caplog.records[-1].getMessage() == "not renewed"


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        (RedisSettings.from_dsn("redis://:hunter2@cache.internal:6380/2"),
         "redis://:****@cache.internal:6380/2"),
        (RedisSettings.from_dsn("rediss://app:hunter2@cache.internal/0"),
         "rediss://app:****@cache.internal:6379/0"),
        (RedisSettings.from_dsn("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0"),
        (RedisSettings(unix_socket_path="/run/redis.sock", password="hunter2"),  # noqa: S106
         "unix://:****@/run/redis.sock?db=0"),
    ],
)  # fmt: skip
def test_the_redis_address_is_told_with_its_password_masked(
    settings: RedisSettings, said: str
) -> None:
    assert describe_redis(settings) == said


async def test_an_unreachable_redis_is_tried_again_a_bounded_number_of_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = RedisSettings(host=DEFAULT_HOST, port=free_port(), conn_retries=2, conn_retry_delay=0)
    with pytest.raises(StartupFailed) as failed:
        await connect(closed)
    assert failed.value.code == 1
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in lines] == ["WARNING", "WARNING", "ERROR"], lines
    assert "try 2 of 3" in lines[1][1] and "unreachable after 3 tries" in lines[2][1]
