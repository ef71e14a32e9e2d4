"""`run` (what `python3 dev.py run` calls) touches only the Redis and queue it was given, and says
what this run did."""

import shutil
import signal
from collections.abc import Iterator

import orjson
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from redis.asyncio import Redis

from tests.support.processes import env_for, run_cli
from worker.local.embedded import EmbeddedRedis, free_port, redis_server

from .test_cli import no_redis_env, start_cli

Snapshot = dict[bytes, tuple[bytes | None, bool]]


async def fill_with_foreign_data(url: str) -> str:
    """Keys of every kind, some in the pipeline's own namespace, and a queued job that is not
    ours (arq's default pickle serializer, a function no worker here knows)."""
    redis = Redis.from_url(url)
    try:
        await redis.set("someone:string", "keep me")
        await redis.hset("someone:hash", mapping={"a": "1", "b": "2"})
        await redis.sadd("pw:contacted", "foreign-company")
        await redis.xadd("pw:stream:approvals", {"draft": "a foreign draft"})
        await redis.zadd("someone:zset", {"x": 1.0})
        await redis.set("someone:expiring", "soon", ex=3600)
    finally:
        await redis.aclose()
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        job = await pool.enqueue_job("someone_elses_task", 42)
        assert job is not None
        return job.job_id
    finally:
        await pool.aclose()


async def snapshot(url: str, exclude: tuple[bytes, ...] = ()) -> Snapshot:
    """A DUMP of every key (and whether it has a TTL): equal snapshots, equal data."""
    redis = Redis.from_url(url)
    try:
        found: Snapshot = {}
        async for key in redis.scan_iter(count=1000):
            if not key.startswith(exclude):
                found[key] = (await redis.dump(key), await redis.pttl(key) > 0)
        return found
    finally:
        await redis.aclose()


@pytest.fixture
def prefilled_server() -> Iterator[EmbeddedRedis]:
    """A Redis of somebody else's, on a port of its own (never the shared 6379)."""
    binary = shutil.which("redis-server")
    assert binary is not None
    with redis_server(binary, free_port()) as server:
        yield server


@pytest.mark.slow
async def test_run_without_redis_url_leaves_every_other_redis_untouched(
    prefilled_server: EmbeddedRedis,
) -> None:
    foreign_job = await fill_with_foreign_data(prefilled_server.url)
    before = await snapshot(prefilled_server.url)
    assert f"arq:job:{foreign_job}".encode() in before

    done = run_cli(no_redis_env(), "run", timeout=180)

    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("Redis: embedded redis-server at redis://127.0.0.1:"), first
    assert ", queue arq:queue (started for this run and thrown away after it;" in first
    assert prefilled_server.url not in done.stderr
    assert await snapshot(prefilled_server.url) == before
    assert "queued for approval 50" in done.stdout
    assert "approval stream entries                 +50" in done.stdout
    assert "drafts counted against the day's quota  +50" in done.stdout
    assert "dead letters                            +0" in done.stdout


@pytest.mark.slow
async def test_run_on_a_named_redis_takes_no_foreign_job_and_a_second_run_says_it_did_nothing(
    redis_url: str, redis: Redis
) -> None:
    foreign_job = await fill_with_foreign_data(redis_url)
    # The run adds its own keys to a Redis it was given; everything else must stay as it was.
    ours = (b"pw:", b"arq:result:", b"arq:job:prospect:", b"arq:queue:run:")
    before = await snapshot(redis_url, exclude=ours)
    stream_before = await redis.xlen("pw:stream:approvals")

    first = run_cli(env_for(redis_url), "run", "--json", timeout=180)

    assert first.returncode == 0, first.stderr
    line = first.stderr.splitlines()[0]
    assert line.startswith(f"Redis: {redis_url} from REDIS_URL, queue arq:queue:run:"), line
    summary = orjson.loads(first.stdout)
    assert summary["job"]["run"]["queued"] == 50
    assert summary["changes"]["approval stream entries"] == 50
    assert await redis.xlen("pw:stream:approvals") == stream_before + 50
    assert await snapshot(redis_url, exclude=ours) == before
    assert await redis.zscore("arq:queue", foreign_job) is not None

    second = run_cli(env_for(redis_url), "run", timeout=180)

    assert second.returncode == 0, second.stderr
    # The day's run was done: said so, its figures marked as that run's, nothing changed.
    assert "this job added nothing: the run of " in second.stdout
    assert "had already fanned out its 75 prospects" in second.stdout
    assert "approval stream entries                 +0" in second.stdout
    assert await redis.xlen("pw:stream:approvals") == stream_before + 50


@pytest.mark.slow
def test_ctrl_c_during_a_run_exits_130_and_says_what_is_left() -> None:
    process = start_cli(no_redis_env(), "run")
    try:
        assert process.stderr is not None
        seen = [process.stderr.readline() for _ in range(2)]
        assert seen[1].startswith("enqueued daily_prospect_queue as "), seen
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "stopped: the embedded Redis and everything in it are thrown away" in err
    assert "Traceback" not in err
