"""What the CLI tells an operator is what happened, read back from Redis: each command in its own
process, beside a real worker (a process, or a burst worker in this one)."""

from pathlib import Path
from typing import Any

import orjson
import pytest
from arq.connections import create_pool
from redis.asyncio import Redis

from settings import Settings
from tests.support.cli import cli_in_process
from tests.support.processes import WorkerProcess, env_for
from worker.client import QueueClient
from worker.connections import redis_settings
from worker.engine.serializer import deserialize, serialize
from worker.keys import WorkerKeys
from worker.registry import CLEANUP_JOB, DAILY_JOB
from worker.runtime.deadletter import DeadLetters

from .conftest import drain

KEYS = WorkerKeys()
REPEAT_NOTE = "this job added nothing: the run of {day} had already fanned out"


def json_of(args: Any) -> Any:
    assert args.returncode == 0, args.stderr
    return orjson.loads(args.stdout)


@pytest.mark.slow
def test_a_malformed_dead_letter_id_is_a_usage_error_without_a_traceback(redis_url: str) -> None:
    env = env_for(redis_url)
    for command in ("show", "replay"):
        done = cli_in_process(env, "dlq", command, "garbage")
        assert done.returncode == 2, done.stderr
        error, hint = done.stderr.splitlines()
        assert error.startswith("Error: Invalid value for ")
        assert error.endswith(
            "'garbage' is not a dead-letter entry id (like 1764000000000-0, from "
            "prospect-worker dlq list)"
        )
        assert hint == f"Try: prospect-worker dlq {command} --help"


@pytest.mark.slow
async def test_a_past_run_date_without_backfill_is_refused_at_enqueue(
    redis_url: str, redis: Redis
) -> None:
    env = env_for(redis_url)
    done = cli_in_process(env, "enqueue", DAILY_JOB, "--payload", '{"run_date": "2026-01-05"}')
    assert done.returncode == 2
    line, hint = done.stderr.splitlines()
    assert hint == "Try: prospect-worker enqueue --help"
    assert line.startswith("Error: Invalid value for --payload: run_date 2026-01-05 is not today")
    assert "set backfill: true" in line
    assert await redis.zcard("arq:queue") == 0


@pytest.mark.slow
async def test_a_daily_job_refused_for_its_run_date_is_not_offered_for_replay(
    redis_url: str, redis: Redis, settings: Settings
) -> None:
    # Another arq client (not the CLI) queued it: the worker refuses it for good.
    arq = await create_pool(
        redis_settings(settings), job_serializer=serialize, job_deserializer=deserialize
    )
    await arq.enqueue_job(DAILY_JOB, {"run_date": "2026-01-05"}, _job_id="past-day")
    await arq.aclose()
    await drain(settings)
    [(entry, _)] = await redis.xrange(KEYS.dead_letters)
    env = env_for(redis_url)
    shown = cli_in_process(env, "dlq", "show", entry)
    assert shown.returncode == 0, shown.stderr
    assert "possible" not in shown.stdout
    assert "enqueue a corrected job instead" in shown.stdout
    replay = cli_in_process(env, "dlq", "replay", entry)
    assert replay.returncode == 1
    assert await redis.xlen(KEYS.dead_letters) == 1
    assert await redis.zcard("arq:queue") == 0


@pytest.mark.slow
async def test_dlq_show_prints_the_payload_as_json(redis_url: str, redis: Redis) -> None:
    letters = DeadLetters(redis, KEYS, queue_name="arq:queue", job_expires_ms=60_000)
    entry = await letters.add(
        job_id="j",
        function="cleanup",
        kind="failed",
        error_type="TransientError",
        error="TransientError: away",
        tries=3,
        payload={"flag": True, "none": None},
    )
    shown = cli_in_process(env_for(redis_url), "dlq", "show", entry)
    assert shown.returncode == 0, shown.stderr
    assert 'payload  {"flag":true,"none":null}' in shown.stdout


def test_a_bad_duration_names_its_option(redis_url: str) -> None:
    done = cli_in_process(env_for(redis_url), "dlq", "purge", "--older-than", "30x")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "Error: Invalid value for '--older-than': '30x': expected a number and a unit, "
        "like 30d or 12h"
    )


@pytest.mark.slow
def test_a_usage_error_is_one_error_line_and_a_try_line(redis_url: str) -> None:
    done = cli_in_process(env_for(redis_url), "enqueue", DAILY_JOB, "--timeout", "5")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "Error: --timeout only applies with --wait",
        "Try: prospect-worker enqueue --help",
    ]


@pytest.mark.slow
def test_stats_of_an_empty_queue_shows_no_oldest_due_age(redis_url: str) -> None:
    env = env_for(redis_url)
    human = cli_in_process(env, "stats")
    assert human.returncode == 0, human.stderr
    assert "oldest due job: none (nothing due)" in human.stdout
    assert json_of(cli_in_process(env, "stats", "--json"))["oldest_due_age_s"] is None


@pytest.mark.slow
async def test_a_json_wait_that_times_out_still_prints_the_job(
    redis_url: str, redis: Redis
) -> None:
    done = cli_in_process(
        env_for(redis_url), "enqueue", CLEANUP_JOB, "--wait", "--timeout", "1", "--json"
    )
    assert done.returncode == 1
    report = orjson.loads(done.stdout)
    assert report["state"] == "queued"
    assert await redis.zscore("arq:queue", report["job_id"]) is not None


@pytest.mark.slow
async def test_waiting_on_a_paused_queue_says_it_is_paused(redis_url: str, tmp_path: Path) -> None:
    env = env_for(redis_url)
    # Paused before the worker starts: a pause takes effect within a second (the worker reads
    # the switch every half second), and this test is about what the wait says, not that bound.
    assert cli_in_process(env, "pause").returncode == 0
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        worker.wait_ready()
        done = cli_in_process(env, "enqueue", CLEANUP_JOB, "--wait", "--timeout", "7", timeout=40)
        worker.terminate()
    assert done.returncode == 1
    assert "no worker is taking jobs" not in done.stderr
    assert "the queue is paused" in done.stderr
    assert "prospect-worker resume" in done.stderr


async def test_status_of_a_finished_cleanup_shows_what_it_did(
    redis_url: str, client: QueueClient, settings: Settings
) -> None:
    job_id = await client.enqueue(CLEANUP_JOB)
    await drain(settings)
    shown = cli_in_process(env_for(redis_url), "status", job_id)
    assert shown.returncode == 0, shown.stderr
    assert "None" not in shown.stdout
    assert "stage     trimmed (2 of 2)" in shown.stdout


@pytest.mark.slow
async def test_a_prospect_results_draft_id_opens_its_draft(
    redis_url: str, client: QueueClient, settings: Settings, redis: Redis
) -> None:
    await client.enqueue(DAILY_JOB)
    await drain(settings)
    env = env_for(redis_url)
    prospect_jobs = [key async for key in redis.scan_iter("arq:result:prospect:*")]
    assert prospect_jobs
    drafted = None
    for key in prospect_jobs:
        report = json_of(cli_in_process(env, "status", key.removeprefix("arq:result:"), "--json"))
        if report["result"]["draft_id"] is not None:
            drafted = report["result"]
            break
    assert drafted is not None
    shown = cli_in_process(env, "drafts", "show", drafted["draft_id"], "--json")
    assert json_of(shown)["id"] == drafted["company_id"]


@pytest.mark.slow
async def test_a_second_daily_run_the_same_day_reads_the_same_everywhere(
    redis_url: str, tmp_path: Path
) -> None:
    env = env_for(redis_url)
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        worker.wait_ready()
        first = cli_in_process(env, "enqueue", DAILY_JOB, "--wait", "--json", timeout=180)
        second = cli_in_process(env, "enqueue", DAILY_JOB, "--wait", timeout=180)
        second_json = cli_in_process(env, "enqueue", DAILY_JOB, "--wait", "--json", timeout=180)
        worker.terminate()
    day = json_of(first)["result"]["run_id"]
    note = REPEAT_NOTE.format(day=day)
    assert note not in first.stdout
    assert second.returncode == 0, second.stderr
    assert note in second.stdout
    repeat = json_of(second_json)
    assert repeat["note"].startswith(note)
    status = cli_in_process(env, "status", repeat["job_id"])
    assert note in status.stdout
    # The run in process (`dev.py run`) on the same Redis and queue reads it the same way.
    ran = cli_in_process({**env, "PW_QUEUE_NAME": "arq:queue"}, "run", timeout=180)
    assert ran.returncode == 0, ran.stderr
    assert note in ran.stdout
    assert "nothing to do" not in ran.stdout
    stats = json_of(cli_in_process(env, "stats", "--json"))["daily"]
    assert (stats["run_id"], stats["state"], stats["fanned_out"]) == (
        day,
        "complete",
        repeat["run"]["total"],
    )
