"""Faults on real processes: a worker killed mid-run loses nothing and repeats no side effect."""

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import orjson
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from redis.asyncio import Redis

from jobs.keys import Keys
from jobs.prospecting.runs import RunLedger
from tests.support.processes import WorkerProcess, env_for
from tests.support.runs import wait_for_run

KEYS = Keys()


class SlowChat(BaseHTTPRequestHandler):
    """A loopback OpenAI-compatible endpoint that takes its time, so a stop lands mid-run."""

    calls: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SlowChat.calls.append(body["model"])
        time.sleep(0.3)
        answer = "Subject: A quick idea for your team\n\nHi there, " + "we help teams grow. " * 5
        payload = {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}]}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_llm() -> Iterator[str]:
    SlowChat.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_sigterm_mid_run_then_restart_loses_nothing_and_drafts_nothing_twice(
    redis_url: str, redis: Redis, slow_llm: str, tmp_path: Path
) -> None:
    env = {
        **env_for(redis_url),
        "PW_LLM__BASE_URL": slow_llm,
        "PW_LLM__MODEL": "slow-test",
        "PW_SHUTDOWN_GRACE_S": "5",
        "PW_JOBS__PROCESS_PROSPECT__LIMIT": "8",
    }
    first = WorkerProcess(env, tmp_path / "first.log")
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )
    job = await pool.enqueue_job("daily_prospect_queue")
    assert job is not None
    run_id = (await job.result(timeout=60, poll_delay=0.05))["run_id"]
    await pool.aclose()

    ledger = RunLedger(redis, KEYS)
    # Polls Redis, written by the worker process: no asyncio.Event can cross that boundary.
    while (summary := await ledger.summary(run_id)) is None or summary.queued < 10:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    # Mid-run: 8 prospects mid-draft (300 ms each), dozens still queued. The worker stops taking
    # jobs, lets the ones in flight finish within the grace period, and exits cleanly.
    code, output = first.stop()
    assert code == 0, output
    interrupted = await ledger.summary(run_id)
    assert interrupted is not None and interrupted.state == "running"

    second = WorkerProcess(env, tmp_path / "second.log")
    try:
        await wait_for_run(redis, run_id, timeout_s=120)
    finally:
        second.stop()

    final = await ledger.summary(run_id)
    assert final is not None
    assert final.done == final.total and final.failed == 0
    entries = await redis.xrange(KEYS.approvals)
    companies = [fields["company_id"] for _, fields in entries]
    assert len(companies) == len(set(companies)) == final.queued == 50
    assert int(await redis.get(KEYS.quota(run_id))) == 50
    assert all(fields["writer"] == "llm:slow-test" for _, fields in entries)
    # Nothing in flight was cut off, so no draft was asked for twice.
    assert len(SlowChat.calls) == final.drafted
