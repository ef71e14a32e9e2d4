"""The laptop default: an embedded Redis when none is configured or answering."""

import os

import pytest
from redis.asyncio import Redis

from jobs.keys import Keys
from settings import load_settings
from worker import cli
from worker.embedded import answers, embedded_redis
from worker.registry import DAILY_JOB

from .conftest import make_settings


def test_run_starts_an_embedded_redis_when_nothing_answers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("PW_") or n == "REDIS_URL"]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(cli, "answers", lambda host, port: False)
    settings = load_settings()
    with cli.reachable_redis(settings) as (ready, kind):
        assert kind == "redis-server"
        host, port = ready.redis_url.removeprefix("redis://").removesuffix("/0").split(":")
        assert ready.redis_url != settings.redis_url
        assert answers(host, int(port))
    assert not answers(host, int(port))  # thrown away afterwards
    assert "started an embedded Redis (redis-server)" in capsys.readouterr().err


def test_a_configured_redis_url_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "answers", lambda host, port: False)
    settings = make_settings("redis://127.0.0.1:1/0")
    with cli.reachable_redis(settings) as (ready, kind):
        assert (ready.redis_url, kind) == ("redis://127.0.0.1:1/0", None)


async def test_the_whole_pipeline_runs_on_the_in_process_fallback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with embedded_redis(prefer_server=False) as fake:
        assert fake.kind == "fakeredis"
        settings = make_settings(fake.url)
        assert await cli.run_main_job(settings, DAILY_JOB, in_process=True) == cli.EXIT_OK
        redis = Redis.from_url(fake.url, decode_responses=True)
        try:
            assert await redis.xlen(Keys().approvals) == settings.daily_limit
        finally:
            await redis.aclose()
    out = capsys.readouterr().out
    assert f"queued for approval {settings.daily_limit}," in out
    assert f"approval stream entries: {settings.daily_limit}" in out
