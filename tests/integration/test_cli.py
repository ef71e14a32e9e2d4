"""The CLI as an operator runs it: a subprocess, a real worker process, a throwaway Redis."""

import asyncio
import importlib.metadata
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from jobs.keys import Keys
from tests.support.cli import cli_in_process
from tests.support.processes import ROOT, WorkerProcess, env_for, run_cli

KEYS = Keys()


def start_cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """The CLI as a terminal starts it: Ctrl-C (SIGINT) at its default, even when the suite
    itself was started in the background, where a shell hands its children SIGINT ignored."""
    return subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_at_default,  # noqa: PLW1509 - one call, no lock touched
    )


def _sigint_at_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_version_prints_the_package_version() -> None:
    done = run_cli(env_for("redis://127.0.0.1:1/0"), "--version")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip()
        == f"prospect-worker, version {importlib.metadata.version('prospect-worker')}"
    )


@pytest.mark.slow
def test_help_lists_the_commands_and_job_names() -> None:
    env = env_for("redis://127.0.0.1:1/0")
    bare = run_cli(env)
    assert bare.returncode == 0, bare.stderr
    for command in ("enqueue", "status", "run"):
        assert command in bare.stdout
    enqueue = cli_in_process(env, "enqueue", "--help")
    assert enqueue.returncode == 0
    assert "NAME is one of: cleanup, daily_prospect_queue, process_prospect" in enqueue.stdout


def test_dev_py_help_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "dev.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "dev.py run" in done.stdout


@pytest.mark.slow
def test_enqueue_wait_then_status_as_json_and_as_a_table(redis_url: str, tmp_path: Path) -> None:
    env = env_for(redis_url)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        done = cli_in_process(env, "enqueue", "daily_prospect_queue", "--wait", timeout=180)
        assert done.returncode == 0, done.stderr
        job_id = done.stdout.splitlines()[0]
        as_json = cli_in_process(env, "status", job_id, "--json")
        human = cli_in_process(env, "status", job_id)
    finally:
        worker.stop()
    assert as_json.returncode == 0, as_json.stderr
    checked = subprocess.run(
        [sys.executable, "-m", "json.tool"],
        input=as_json.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, as_json.stdout
    report = orjson.loads(as_json.stdout)
    assert report["state"] == "complete"
    assert report["run"]["state"] == "complete"
    assert report["run"]["queued"] == 50
    assert human.returncode == 0, human.stderr
    assert "queued for approval 50" in human.stdout
    assert "75 of 75 prospects done, 0 failed" in human.stdout
    # The bar's lines (stderr is a pipe here) name prospects, never the daily job's own stage.
    assert "prospects: 75 of 75 done, 0 failed" in done.stderr
    assert "complete (75 of 75)" not in done.stderr


@pytest.mark.slow
def test_unknown_job_name_and_id(redis_url: str) -> None:
    env = env_for(redis_url)
    unknown = cli_in_process(env, "enqueue", "daily_prospect_qeue")
    assert unknown.returncode == 2
    assert "'daily_prospect_qeue' is not one of 'cleanup', 'daily_prospect_queue'" in unknown.stderr
    missing = cli_in_process(env, "status", "no-such-id")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "Error: no job with id 'no-such-id' (unknown, or its result expired)"
    )
    assert missing.stdout == ""


@pytest.mark.slow
async def test_a_bad_payload_is_refused_before_anything_is_queued(
    redis_url: str, redis: Redis
) -> None:
    done = cli_in_process(
        env_for(redis_url),
        "enqueue",
        "daily_prospect_queue",
        "--payload",
        '{"run_date":"tomorrow"}',
    )
    assert done.returncode == 2
    assert "Error: Invalid value for --payload: run_date: " in done.stderr
    assert "(got 'tomorrow')" in done.stderr
    assert done.stdout == ""
    assert await redis.zcard("arq:queue") == 0
    assert [key async for key in redis.scan_iter("arq:job:*")] == []
    not_json = cli_in_process(
        env_for(redis_url), "enqueue", "daily_prospect_queue", "--payload", "{"
    )
    assert not_json.returncode == 2
    assert "--payload: not valid JSON" in not_json.stderr


@pytest.mark.slow
async def test_wait_with_no_worker_says_so_and_gives_up_at_the_timeout(
    redis_url: str, redis: Redis
) -> None:
    done = cli_in_process(
        env_for(redis_url),
        "enqueue",
        "daily_prospect_queue",
        "--wait",
        "--timeout",
        "7",
        timeout=40,
    )
    assert done.returncode == 1, done.stderr
    job_id = done.stdout.splitlines()[0]
    assert "no worker is taking jobs from arq:queue" in done.stderr
    assert f"gave up waiting: job {job_id} is still queued" in done.stderr
    assert f"Try: prospect-worker status {job_id}" in done.stderr
    assert "Traceback" not in done.stderr
    assert await redis.zscore("arq:queue", job_id) is not None  # left queued, not cancelled


@pytest.mark.slow
async def test_ctrl_c_while_waiting_exits_130_and_says_how_to_follow_the_job(
    redis_url: str, redis: Redis
) -> None:
    process = start_cli(env_for(redis_url), "enqueue", "daily_prospect_queue", "--wait")
    try:
        assert process.stdout is not None
        job_id = process.stdout.readline().strip()
        await asyncio.sleep(0.5)  # into the wait loop: the id is printed just before it starts
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert f"prospect-worker status {job_id}" in err
    assert "Traceback" not in err
    assert await redis.zscore("arq:queue", job_id) is not None


@pytest.mark.slow
def test_an_unreachable_redis_is_one_line_with_the_password_masked(
    unused_port: int,
) -> None:
    env = env_for(f"redis://:s3cret@127.0.0.1:{unused_port}/0")
    for args in (("status", "some-id"), ("enqueue", "daily_prospect_queue")):
        done = cli_in_process(env, *args, timeout=20)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.splitlines()
        assert lines[0].startswith(
            f"Error: cannot reach Redis at redis://:****@127.0.0.1:{unused_port}/0: "
        ), lines
        assert lines[1:] == ["Try: check that Redis runs there and that REDIS_URL is right"]
        assert "s3cret" not in done.stderr


@pytest.fixture
def unused_port() -> int:
    from worker.local.embedded import free_port

    return free_port()


def no_redis_env() -> dict[str, str]:
    """The environment of a user who named no Redis and no queue."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PW_") and k != "REDIS_URL"}


@pytest.mark.slow
def test_shell_completion_offers_the_job_names() -> None:
    env = env_for("redis://127.0.0.1:1/0")
    script = run_cli({**env, "_PROSPECT_WORKER_COMPLETE": "bash_source"})
    assert script.returncode == 0, script.stderr
    assert "_PROSPECT_WORKER_COMPLETE=bash_complete" in script.stdout
    words = {"COMP_WORDS": "prospect-worker enqueue daily", "COMP_CWORD": "2"}
    completed = run_cli({**env, **words, "_PROSPECT_WORKER_COMPLETE": "bash_complete"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["plain,daily_prospect_queue"]
