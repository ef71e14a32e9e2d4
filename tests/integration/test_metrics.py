"""The metrics port of a real worker process (`arq worker.WorkerSettings`), scraped over HTTP:
every metric the dashboard and the alerts read is exported, values move with what the worker
does, promtool accepts the scrape, and `stats` agrees with Redis."""

import asyncio
import subprocess
from pathlib import Path

import orjson
import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import Redis

from jobs.keys import Keys
from tests.monitoring.assets import names_used_by_monitoring
from tests.support.processes import WorkerProcess, env_for, run_cli
from tests.support.runs import wait_for_run
from worker.local.embedded import free_port
from worker.runtime.outcomes import OUTCOME_KINDS

from .scrape import Scrape, scrape_until

KEYS = Keys()
PROSPECT, DAILY = "process_prospect", "daily_prospect_queue"


def metrics_env(redis_url: str, port: int, **extra: str) -> dict[str, str]:
    return {
        **env_for(redis_url),
        "PW_METRICS_PORT": str(port),
        "PW_METRICS_HOST": "127.0.0.1",
        "PW_METRICS_SAMPLE_S": "0.2",
        **extra,
    }


async def arq_pool(redis_url: str) -> ArqRedis:
    return await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )


@pytest.mark.slow
async def test_a_real_worker_exports_what_monitoring_reads_and_values_move(
    redis_url: str, redis: Redis, tmp_path: Path, promtool: str
) -> None:
    port = free_port()
    # The email finder points at a closed loopback port: every prospect job fails for good
    # after its tries, so failures, retries and dead letters all move.
    env = metrics_env(
        redis_url,
        port,
        PW_EMAIL_FINDER__BASE_URL=f"http://127.0.0.1:{free_port()}",
        PW_RETRY__MAX_TRIES="2",
        PW_RETRY__BASE_DELAY_S="0.05",
        PW_RETRY__MAX_DELAY_S="0.1",
        PW_DAILY_LIMIT="4",
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        before = await scrape_until(port, lambda s: True, timeout_s=30)
        assert before.total("prospect_worker_job_outcomes_total") == 0
        pool = await arq_pool(redis_url)
        job = await pool.enqueue_job(DAILY)
        assert job is not None
        result = await job.result(timeout=60, poll_delay=0.1)
        await wait_for_run(redis, result["run_id"], timeout_s=60)
        fanned_out = result["fanned_out"]
        assert fanned_out > 0
        # A payload that does not validate: a poison job the runtime dead-letters at once.
        poison = await pool.enqueue_job(DAILY, {"run_date": 5})
        assert poison is not None
        await pool.aclose()

        def settled(s: Scrape) -> bool:
            return (
                s.value("prospect_worker_job_outcomes_total", job_type=DAILY, outcome="poison") == 1
                and s.value("prospect_worker_dead_letter_stream_entries") == fanned_out + 1
                and s.value("prospect_worker_daily_run_last_success_timestamp_seconds") > 0
                # A job's dead letter is written just before its finish takes it off the queue:
                # the sampler may count the queue between the two.
                and s.total("prospect_worker_queue_jobs") == 0
            )

        after = await scrape_until(port, settled)
        stats = run_cli(env, "stats", "--json")
        table = run_cli(env, "stats")
    finally:
        code, output = worker.stop()
    assert code == 0, output

    # Every name the dashboard and the alert rules read is exported (up is Prometheus's own).
    missing = names_used_by_monitoring() - after.names
    assert not missing, f"not exported: {sorted(missing)}"

    outcome = "prospect_worker_job_outcomes_total"
    assert after.value(outcome, job_type=PROSPECT, outcome="failed") == fanned_out
    assert after.value(outcome, job_type=PROSPECT, outcome="retried") == fanned_out
    assert after.value(outcome, job_type=DAILY, outcome="succeeded") == 1
    assert after.value(outcome, job_type=PROSPECT, outcome="succeeded") == 0
    assert after.value("prospect_worker_jobs_started_total", job_type=PROSPECT) == 2 * fanned_out
    for job_type in (DAILY, PROSPECT, "unknown"):
        assert after.value("prospect_worker_jobs_in_flight", job_type=job_type) == 0
        for kind in OUTCOME_KINDS:  # every label set exists from the start
            assert (outcome, frozenset({("job_type", job_type), ("outcome", kind)})) in (
                before.samples
            )
    assert after.value("prospect_worker_job_duration_seconds_count", job_type=DAILY) == 1
    waits = after.value("prospect_worker_job_queue_wait_seconds_count", job_type=PROSPECT)
    assert waits == 2 * fanned_out
    requests = "prospect_worker_external_requests_total"
    refused = after.value(
        requests, service="email_finder", operation="domain_search", outcome="network_error"
    )
    assert refused == 2 * fanned_out
    assert (
        after.value(requests, service="discovery", operation="company_search", outcome="success")
        >= 1
    )
    assert after.total(requests, service="website", outcome="success") >= fanned_out
    assert after.value("prospect_worker_daily_quota_limit_drafts") == 4
    assert after.value("prospect_worker_daily_quota_used_drafts") == 0
    assert after.value("prospect_worker_daily_run_prospects", stage="fanned_out") == fanned_out
    assert after.value("prospect_worker_daily_run_prospects", stage="failed") == fanned_out
    assert after.value("prospect_worker_max_jobs") == 50
    assert after.value("prospect_worker_loop_heartbeat_timestamp_seconds") > 0
    assert after.total("prospect_worker_queue_jobs") == 0

    linted = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=after.text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr

    # `stats` reads the same from Redis, including the outcomes the sampler published.
    assert stats.returncode == 0, stats.stderr
    figures = orjson.loads(stats.stdout)
    assert figures["dead_letters"] == fanned_out + 1
    assert figures["outcomes_last_hour"][PROSPECT]["failed"] == fanned_out
    assert figures["outcomes_last_hour"][DAILY]["poison"] == 1
    assert figures["daily"]["state"] == "complete"
    assert figures["daily"]["fanned_out"] == fanned_out
    assert figures["paused"] is False  # the pause switch (worker/scheduling/pause.py) is off
    assert table.returncode == 0, table.stderr
    assert f"dead letters: {fanned_out + 1}" in table.stdout
    assert "daily run: " in table.stdout
    assert "(complete)" in table.stdout


@pytest.mark.slow
async def test_json_logs_one_object_per_line_without_personal_data(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    env = metrics_env(redis_url, free_port(), PW_LOG_FORMAT="json", PW_DAILY_LIMIT="8")
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        pool = await arq_pool(redis_url)
        job = await pool.enqueue_job(DAILY)
        assert job is not None
        result = await job.result(timeout=60, poll_delay=0.1)
        await wait_for_run(redis, result["run_id"], timeout_s=60)
        poison = await pool.enqueue_job(DAILY, {"run_date": "not a date"})
        assert poison is not None
        with pytest.raises(Exception, match="InvalidPayload"):
            await poison.result(timeout=30, poll_delay=0.1)
        await pool.aclose()
    finally:
        code, output = worker.stop()
    assert code == 0, output
    lines = [orjson.loads(line) for line in output.splitlines() if line.strip()]
    # One line per outcome: a try deferred by a limit (the prospect type's leases here) is a
    # DEBUG line, as is a try's start.
    ends = [line for line in lines if line.get("event") == "job_end"]
    assert len(ends) == result["fanned_out"] + 2
    first = next(line for line in ends if line["job_type"] == DAILY)
    assert {"ts", "level", "logger", "message", "job_id", "job_try", "outcome", "duration_s"} <= (
        first.keys()
    )
    assert [line["outcome"] for line in ends if line["job_type"] == DAILY] == [
        "succeeded",
        "poison",
    ]
    assert not any(line.get("event") == "job_start" for line in lines)
    assert all(line["outcome"] != "deferred" for line in ends)
    # Every line about the poison job carries its id and error type, its ERROR line too.
    about_poison = [line for line in lines if poison.job_id in line["message"]]
    assert {line["level"] for line in about_poison} == {"ERROR", "WARNING"}, about_poison
    for line in about_poison:
        assert line["job_id"] == poison.job_id and line["error_type"] == "InvalidPayload", line
    # arq's lines come through the same formatter; its per-job lines (arguments, results) not.
    assert any(line["logger"] == "arq.worker" for line in lines)
    assert not any("traceback" in line for line in lines)
    drafts = await redis.xrange(KEYS.approvals)
    assert drafts, "the run queued drafts"
    # No contact address, subject or body reaches the log.
    for _, fields in drafts:
        for private in (fields["to"], fields["subject"], fields["body"][:40]):
            assert private not in output


@pytest.mark.slow
async def test_an_arq_side_poison_job_is_counted(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    worker = WorkerProcess(metrics_env(redis_url, port), tmp_path / "worker.log")
    try:
        await scrape_until(port, lambda s: True, timeout_s=30)
        pool = await arq_pool(redis_url)
        job = await pool.enqueue_job("no_such_function")
        assert job is not None
        with pytest.raises(Exception, match="not found"):
            await job.result(timeout=30, poll_delay=0.1)
        await pool.aclose()
        counted = await scrape_until(
            port,
            lambda s: s.value("prospect_worker_dead_letter_stream_entries") >= 1,
            timeout_s=10,
        )
    finally:
        worker.stop()
    outcome = "prospect_worker_job_outcomes_total"
    assert counted.value(outcome, job_type="unknown", outcome="poison") == 1
