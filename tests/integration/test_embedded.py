"""Where `run` runs: an embedded Redis when none is named, the named one otherwise."""

import os

import pytest
from redis.asyncio import Redis

from jobs.keys import Keys
from settings import load_settings
from worker.cli.demo import Target, run_job, run_target
from worker.cli.output import EXIT_OK, Output
from worker.local.embedded import answers, embedded_redis
from worker.registry import DAILY_JOB

from .conftest import make_settings


def test_without_redis_url_a_fresh_embedded_redis_is_started_and_thrown_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("PW_") or n == "REDIS_URL"]:
        monkeypatch.delenv(name)
    settings = load_settings()
    with run_target(settings) as target:
        url = target.settings.redis_url
        host, port = url.removeprefix("redis://").removesuffix("/0").split(":")
        assert url != settings.redis_url
        assert answers(host, int(port))
        assert target.description.startswith(f"Redis: embedded redis-server at {url}, ")
        assert target.settings.queue_name == "arq:queue"
    assert not answers(host, int(port))


def test_a_named_redis_is_used_with_a_queue_of_the_runs_own() -> None:
    settings = make_settings("redis://:pw@127.0.0.1:1/0")
    with run_target(settings) as target:
        assert target.settings.redis_url == "redis://:pw@127.0.0.1:1/0"
        assert target.settings.queue_name.startswith("arq:queue:run:")
        assert "redis://:****@127.0.0.1:1/0" in target.description
    named = make_settings("redis://127.0.0.1:1/0", queue_name="ops")
    with run_target(named) as target:
        assert target.settings.queue_name == "ops"


@pytest.mark.slow
async def test_the_whole_pipeline_runs_on_the_in_process_fallback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with embedded_redis(prefer_server=False) as fake:
        assert fake.kind == "fakeredis"
        settings = make_settings(fake.url)
        target = Target(settings, "fake", in_process=True)
        assert await run_job(target, DAILY_JOB, None, Output(as_json=False)) == EXIT_OK
        redis = Redis.from_url(fake.url, decode_responses=True)
        try:
            assert await redis.xlen(Keys().approvals) == settings.daily_limit
        finally:
            await redis.aclose()
    out = capsys.readouterr().out
    assert f"queued for approval {settings.daily_limit}" in out
    assert f"approval stream entries                 +{settings.daily_limit}" in out
