"""A dead-letter entry is bounded whatever the job; the stream is capped
(worker/runtime/deadletter.py)."""

import asyncio
import logging
import time
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from tests.conftest import Figures
from tests.support.processes import WorkerProcess, env_for, run_cli
from worker.keys import WorkerKeys
from worker.runtime.deadletter import PAYLOAD_BYTES, DeadLetters

KEYS = WorkerKeys()
ENTRY_LIMIT = 64 * 1024


async def entry_bytes(redis_url: str, entry_id: str) -> int:
    """The entry's bytes as Redis holds them: every field name and value."""
    raw = Redis.from_url(redis_url)  # bytes, as stored
    try:
        [(_, fields)] = await raw.xrange(KEYS.dead_letters, entry_id, entry_id)
    finally:
        await raw.aclose()
    return sum(len(name) + len(value) for name, value in fields.items())


@pytest.mark.timeout(120)
@pytest.mark.slow
async def test_an_8_mb_poison_job_leaves_an_entry_under_64_kb_that_replay_refuses(
    redis_url: str, redis: Redis, tmp_path: Path, figures: Figures
) -> None:
    huge = "x" * 8_000_000
    body = orjson.dumps({"t": None, "f": "cleanup", "a": [{"surprise": huge}], "k": {}, "et": 1})
    await redis.set("arq:job:huge", body)
    await redis.zadd("arq:queue", {"huge": int(time.time() * 1000)})
    env = env_for(redis_url)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.wait_ready()
    try:
        deadline = time.monotonic() + 60
        while not await redis.xlen(KEYS.dead_letters):
            assert worker.running and time.monotonic() < deadline, worker.output()
            await asyncio.sleep(0.05)
    finally:
        code, output = worker.stop()
    assert code == 0, output
    [(entry_id, fields)] = await redis.xrange(KEYS.dead_letters)
    size = await entry_bytes(redis_url, entry_id)
    figures("dead-letter-8mb", job_bytes=len(body), entry_bytes=size)
    assert size <= ENTRY_LIMIT
    assert int(fields["payload_bytes"]) > 8_000_000
    assert len(fields["payload_sha256"]) == 64 and "payload" not in fields

    replayed = run_cli(env, "dlq", "replay", entry_id)
    assert replayed.returncode == 1
    [line] = replayed.stdout.strip().splitlines()
    assert f"over the {PAYLOAD_BYTES:,} an entry keeps" in line
    assert await redis.xlen(KEYS.dead_letters) == 1  # nothing lost
    shown = run_cli(env, "dlq", "show", entry_id)
    assert fields["payload_sha256"] in shown.stdout


async def test_a_payload_that_fits_is_kept_whole_and_replays(redis: Redis) -> None:
    letters = DeadLetters(redis, KEYS, queue_name="arq:queue", job_expires_ms=60_000)
    payload = {"note": "y" * (PAYLOAD_BYTES - 20)}
    entry = await letters.add(
        job_id="fits",
        function="cleanup",
        kind="failed",
        error_type="TransientError",
        error="é" * 5_000,  # bounded in bytes, never cut inside a character
        tries=5,
        payload=payload,
    )
    letter = await letters.show(entry)
    assert letter is not None and letter.payload == payload and letter.replayable is None
    assert letter.error == "é" * 1_000
    assert await letters.replay(letter) == "replayed"


async def test_the_stream_is_capped_and_a_write_that_drops_says_so(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    cap = 100
    letters = DeadLetters(
        redis, KEYS, queue_name="arq:queue", job_expires_ms=60_000, max_entries=cap
    )
    with caplog.at_level(logging.WARNING, logger="worker.deadletter"):
        for n in range(350):
            await letters.add(
                job_id=f"j{n}",
                function="cleanup",
                kind="failed",
                error_type="E",
                error="e",
                tries=1,
                payload={},
            )
    kept = await redis.xlen(KEYS.dead_letters)
    # MAXLEN ~ trims whole stream nodes (100 entries each by Redis's default): never fewer
    # than the cap, and less than a node over it.
    assert cap <= kept < cap + 100
    dropped = sum(int(r.getMessage().split("the ")[1].split()[0]) for r in caplog.records)
    assert dropped == 350 - kept
    newest = await letters.list(limit=1)
    assert newest[0].job_id == "j349"
