"""`prospect-worker dlq ...` as an operator runs it: list, show, replay, purge, on a real Redis
(each command called in-process: what it does with Redis is the point, not the process)."""

import orjson
from redis.asyncio import Redis

from tests.support.cli import cli_in_process
from tests.support.processes import env_for
from worker.engine.arqjobs import JOB_KEY_PREFIX
from worker.keys import WorkerKeys
from worker.runtime.deadletter import DeadLetters

KEYS = WorkerKeys()


async def two_dead_letters(redis: Redis) -> tuple[str, str]:
    letters = DeadLetters(redis, KEYS, queue_name="arq:queue", job_expires_ms=60_000)
    replayable = await letters.add(
        job_id="cleanup-once",
        function="cleanup",
        kind="failed",
        error_type="TransientError",
        error="TransientError: redis away",
        tries=5,
        payload={},
    )
    poison = await letters.add(
        job_id="garbage",
        function="unknown",
        kind="poison",
        error_type="JobExecutionFailed",
        error="unable to deserialize job",
        tries=1,
        raw=b"\xff\x00",
    )
    return replayable, poison


async def test_list_and_show_as_tables_and_as_json(redis_url: str, redis: Redis) -> None:
    replayable, poison = await two_dead_letters(redis)
    env = env_for(redis_url)
    listed = cli_in_process(env, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [entry["id"] for entry in orjson.loads(listed.stdout)] == [poison, replayable]
    only = cli_in_process(env, "dlq", "list", "--type", "cleanup")
    assert replayable in only.stdout and poison not in only.stdout
    shown = cli_in_process(env, "dlq", "show", poison)
    assert shown.returncode == 0
    assert "the job's bytes did not decode: nothing to replay" in shown.stdout
    missing = cli_in_process(env, "dlq", "show", "0-1")
    assert missing.returncode == 1 and "no dead letter '0-1'" in missing.stderr


async def test_replay_enqueues_the_job_and_only_then_removes_the_entry(
    redis_url: str, redis: Redis
) -> None:
    replayable, poison = await two_dead_letters(redis)
    env = env_for(redis_url)
    done = cli_in_process(env, "dlq", "replay", replayable)
    assert done.returncode == 0, done.stderr
    assert "replayed" in done.stdout
    assert await redis.zscore("arq:queue", "cleanup-once") is not None
    assert orjson.loads(await redis.get(JOB_KEY_PREFIX + "cleanup-once") or "{}")["f"] == "cleanup"
    # --all goes on past the entry that cannot be replayed, and says which and why.
    rest = cli_in_process(env, "dlq", "replay", "--all", "--json")
    assert rest.returncode == 1
    [report] = orjson.loads(rest.stdout)
    assert (report["entry"], report["outcome"]) == (poison, "not_replayable")
    assert [entry_id for entry_id, _ in await redis.xrange(KEYS.dead_letters)] == [poison]
    usage = cli_in_process(env, "dlq", "replay")
    assert usage.returncode == 2 and "give one ENTRY_ID or --all" in usage.stderr


async def test_purge_by_age_and_all_only_when_asked(redis_url: str, redis: Redis) -> None:
    await two_dead_letters(redis)
    env = env_for(redis_url)
    kept = cli_in_process(env, "dlq", "purge", "--older-than", "1d")
    assert (kept.returncode, kept.stdout.strip()) == (0, "purged 0 dead letter(s)")
    refused = cli_in_process(env, "dlq", "purge")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    bad = cli_in_process(env, "dlq", "purge", "--older-than", "soon")
    assert bad.returncode == 2 and "like 30d or 12h" in bad.stderr
    assert await redis.xlen(KEYS.dead_letters) == 2
    gone = cli_in_process(env, "dlq", "purge", "--yes", "--json")
    assert orjson.loads(gone.stdout) == {"purged": 2, "older_than_s": None}
    assert await redis.xlen(KEYS.dead_letters) == 0
