"""What a real worker process tells the operator in its log: start-up against a Redis it cannot
use, an outage, the ready line, and one line per job outcome (issue 15)."""

import asyncio
import re
import socket
import time
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.support.cli import cli_in_process
from tests.support.missed_tick import missed_tick_env
from tests.support.processes import RedisServer, WorkerProcess, env_for, run_cli
from tests.support.runs import trigger_daily_run, wait_for_run
from worker.local.embedded import DEFAULT_HOST, free_port

HEALTH = re.compile(r"j_complete=(\d+) j_failed=(\d+) j_retried=(\d+) j_ongoing=(\d+)")

# How often a repeated warning may show during an outage in these tests (30 s by default).
REPEAT_S = 2.0
OUTAGE_S = 6.0
WARNING = re.compile(r" WARNING [\w.]+: (.*)$")


def wait_for_line(worker: WorkerProcess, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in worker.output(current=True):
        assert worker.running, worker.output()
        assert time.monotonic() < deadline, f"no {text!r} in {timeout_s} s:\n{worker.output()}"
        time.sleep(0.05)


def warnings_between(output: str, first: str, last: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if first in line)
    end = next(i for i, line in enumerate(lines) if last in line and i > start)
    return [m.group(1) for line in lines[start + 1 : end] if (m := WARNING.search(line))]


@pytest.mark.slow
def test_a_redis_outage_repeats_each_warning_at_most_once_per_interval(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        env = env_for(server.url, PW_LOG_REPEAT_S=str(REPEAT_S))
        with WorkerProcess(env, tmp_path / "worker.log") as worker:
            worker.wait_ready()
            server.kill()
            wait_for_line(worker, "Redis unavailable")
            time.sleep(OUTAGE_S)  # the outage itself: Redis stays away this long
            server.start()
            wait_for_line(worker, "Redis is back after")
            code, output = worker.stop()
    assert code == 0, output
    repeated = warnings_between(output, "Redis unavailable", "Redis is back after")
    # Each kind of warning, told apart by its text before any count or figure.
    kinds = Counter(re.sub(r"[\d.]+|\(.*", "", line).strip() for line in repeated)
    back = re.search(r"Redis is back after ([\d.]+) s", output)
    assert back is not None, output
    most = 1 + int(float(back.group(1)) / REPEAT_S)  # the first line, then one per interval
    assert kinds, output
    assert max(kinds.values()) <= most, (kinds, output)
    # What was held back is counted, not lost.
    assert any(re.search(r"\d+ more in the last", line) for line in repeated), output


def start_and_wait(env: dict[str, str], log: Path) -> tuple[int, str]:
    with WorkerProcess(env, log) as worker:
        return worker.wait(timeout=60), worker.output()


@pytest.mark.slow
def test_start_up_against_a_closed_port_retries_a_few_times_then_exits_with_one_line(
    tmp_path: Path,
) -> None:
    url = f"redis://:s3cret-pw@{DEFAULT_HOST}:{free_port()}/0"  # nothing listens there
    code, output = start_and_wait(env_for(url), tmp_path / "worker.log")
    assert code == 1, output
    assert "Traceback" not in output, output
    assert "s3cret-pw" not in output, output
    retries = [line for line in output.splitlines() if "unreachable" in line]
    # arq's RedisSettings allow 5 retries: one line each, then the last one that gives up.
    assert len(retries) == 6, output
    assert f"redis://:****@{DEFAULT_HOST}:" in retries[-1], output
    assert " ERROR " in retries[-1] and "exiting" in retries[-1], output
    assert len(output.splitlines()) == 6, output


@pytest.mark.slow
def test_start_up_with_a_wrong_password_exits_at_once_with_one_line(tmp_path: Path) -> None:
    throwaway = "the-right-one"  # a test server's own password, never a real one
    with RedisServer(tmp_path / "redis", password=throwaway) as server:
        url = server.url.replace("redis://", "redis://:wrong-pw@")
        code, output = start_and_wait(env_for(url), tmp_path / "worker.log")
        no_password = server.url  # requirepass, and none given
        code_none, output_none = start_and_wait(env_for(no_password), tmp_path / "none.log")
    for exit_code, said in ((code, output), (code_none, output_none)):
        assert exit_code == 1, said
        assert "Traceback" not in said, said
        assert "wrong-pw" not in said, said
        # Not retried: a password does not fix itself.
        assert len(said.splitlines()) == 1, said
        assert " ERROR " in said and "refused" in said and str(server.port) in said, said


async def settled_health(redis: Redis, jobs: int, timeout_s: float = 60) -> re.Match[str]:
    """arq's health record once it counts `jobs` ended jobs and none running."""
    key = f"pw:health-check:{socket.gethostname()}"
    deadline = time.monotonic() + timeout_s
    while True:
        found = HEALTH.search(await redis.get(key) or "")
        if found and int(found[1]) + int(found[2]) >= jobs and found[4] == "0":
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_a_deferral_is_no_outcome_line_and_no_retry(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    env = env_for(redis_url, PW_LOG_REPEAT_S="1", PW_RECOVERY__HEALTH_INTERVAL_S="0.2")
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        worker.wait_ready()
        # The prospect type paused while the run fans out: its jobs are deferred, each back a
        # second later, until the resume (a type at its limit parks its jobs, not defers them).
        assert cli_in_process(env, "pause", "--type", "process_prospect").returncode == 0
        # The worker reads the switch twice a second: the run starts once it has, or its jobs
        # could all be done before the pause reaches the worker.
        deadline = time.monotonic() + 30
        while "pause switch: process_prospect" not in worker.output():
            assert time.monotonic() < deadline, worker.output()[-3000:]
            await asyncio.sleep(0.1)
        result = await trigger_daily_run(redis_url)
        while not re.search(r"deferred \d+ jobs in the last", worker.output()):
            assert time.monotonic() < deadline, worker.output()[-3000:]
            await asyncio.sleep(0.1)
        assert cli_in_process(env, "resume").returncode == 0
        await wait_for_run(redis, str(result["run_id"]))
        jobs = int(str(result["fanned_out"])) + 1
        health = await settled_health(redis, jobs)
        code, output = worker.stop()
    assert code == 0, output
    info = [line for line in output.splitlines() if " INFO prospect_worker" in line]
    outcomes = Counter(
        m[1] for line in info if (m := re.search(r"job end \w+ (\S+) try \d+ (\w+)", line))
    )
    # One INFO line per job outcome: each job once, the run and every prospect job it fanned out.
    assert len(outcomes) == jobs and set(outcomes.values()) == {1}, output
    assert not any("job start" in line for line in info), output
    summaries = [re.search(r"deferred (\d+) jobs in the last [\d.]+ s", line) for line in info]
    deferred = sum(int(m[1]) for m in summaries if m)
    assert deferred > 0, output  # the pause did defer jobs: the summary counts them
    # arq's own counters hold real retries only: there were none.
    assert health[3] == "0", health[0]
    assert int(health[1]) == jobs, health[0]
    assert "◆ 0 retries" in output, output


def ready_line(output: str) -> str:
    return next(line for line in output.splitlines() if "prospect-worker ready" in line)


@pytest.mark.slow
def test_the_ready_line_names_redis_queue_job_types_and_what_is_off(tmp_path: Path) -> None:
    secret = "ready-line-pw"  # noqa: S105 - the throwaway test server's own
    with RedisServer(tmp_path / "redis", password=secret) as server:
        url = server.url.replace("redis://", f"redis://:{secret}@")
        env = env_for(url, PW_QUEUE_NAME="pw:truth-queue")
        with WorkerProcess(env, tmp_path / "worker.log") as worker:
            worker.wait_ready()
            pause = run_cli(env, "pause")
            wait_for_line(worker, "pause switch: *")
            resume = run_cli(env, "resume")
            wait_for_line(worker, "pause switch: nothing paused")
            code, output = worker.stop()
    assert code == 0 and pause.returncode == 0 and resume.returncode == 0, output
    line = ready_line(output)
    assert secret not in output, output
    assert f"Redis redis://:****@{DEFAULT_HOST}:{server.port}/0, queue pw:truth-queue" in line
    job_types = ("daily_prospect_queue", "process_prospect", "cleanup", "send_outreach")
    assert all(job_type in line for job_type in (*job_types, "process_reply")), line
    assert "off: sending (PW_SMTP__HOST unset)" in line, line
    assert "daily run at 08:00 America/New_York" in line, line
    # A pause is worth a look; a resume is the normal state coming back.
    assert " WARNING prospect_worker.engine: pause switch: *" in output, output
    assert " INFO prospect_worker.engine: pause switch: nothing paused" in output, output


def test_a_worker_started_after_the_tick_says_on_its_ready_line_it_catches_up(
    redis_url: str, tmp_path: Path
) -> None:
    tick, env = missed_tick_env(redis_url, daily_limit=1)
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        worker.wait_ready()
        code, output = worker.stop()
    assert code == 0, output
    line = ready_line(output)
    assert f"daily run at {tick:%H:%M} UTC: today's daily run was missed, running it now as " in (
        line
    ), line
    assert "cron:daily_prospect_queue:" in line, line
