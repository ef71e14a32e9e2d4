"""What `approve`, `outbox` and `dlq` tell an operator about sends that ended badly: what happened,
read back from Redis, each command in its own process beside a real worker."""

from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from jobs.models import Draft
from jobs.prospecting.store import ProspectStore
from jobs.redisreply import reply
from tests.support.cli import cli_in_process
from tests.support.fault_env import retry_env
from tests.support.processes import WorkerProcess, env_for
from tests.support.runs import open_run
from tests.support.smtp_server import FaultySink, faulty_sink, smtp_env
from tests.support.until import until
from worker.keys import WorkerKeys

KEYS = WorkerKeys()
FAST = retry_env(max_tries=2, base_delay_s=0.05)


async def seed(redis: Redis, *addresses: str) -> list[str]:
    """Pending drafts as the daily run queues them, one per address: ids d1, d2, ..."""
    store, ids = ProspectStore(redis, KEYS), []
    # Records land only in an opened run whose members include their job.
    await open_run(redis, "r", *(f"d{n}" for n in range(1, len(addresses) + 1)), keys=KEYS)
    for number, address in enumerate(addresses, 1):
        draft = Draft(to=address, subject=f"Hello {number}", body="Hi there.", writer="template")
        outcome, _ = await store.queue_draft(
            run_id="r", company_id=f"d{number}", draft=draft, score=70, day="d", limit=100
        )
        assert outcome == "queued"
        ids.append(f"d{number}")
    return ids


async def state_of(redis: Redis, draft_id: str) -> str | None:
    return await reply(redis.hget(KEYS.draft(draft_id), "state"))


async def reaches(redis: Redis, draft_id: str, state: str) -> None:
    async def check() -> bool:
        return await state_of(redis, draft_id) == state

    await until(check)


@pytest.mark.slow
async def test_reapproving_a_draft_whose_send_failed_for_good_sends_it(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    (draft_id,) = await seed(redis, "ann@one.example")
    env = env_for(redis_url, **FAST)  # no SMTP server: every send fails for good
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        worker.wait_ready()
        first = cli_in_process(env, "approve", draft_id, "--json")
        assert first.returncode == 0, first.stderr
        assert orjson.loads(first.stdout)["job_id"] == f"send:{draft_id}"
        await until(lambda: reply(redis.xlen(KEYS.dead_letters)))
        # The draft says its send failed for good, read from Redis; not `approved`.
        await reaches(redis, draft_id, "send_failed")
        shown = orjson.loads(cli_in_process(env, "drafts", "show", draft_id, "--json").stdout)
        assert shown["state"] == "send_failed"
        assert "sending is off" in shown["reason"]
        waiting = cli_in_process(env, "drafts", "list", "--state", "approved", "--json")
        assert orjson.loads(waiting.stdout) == []
        worker.terminate()

        # The operator fixes SMTP and approves again: the send goes out, and the answer says so.
        with faulty_sink(tmp_path / "mail") as sink:
            fixed = env_for(redis_url, **FAST, **smtp_env(sink))
            worker.start(fixed)
            worker.wait_ready()
            again = cli_in_process(fixed, "approve", draft_id)
            assert again.returncode == 0, again.stderr
            assert "send had failed for good" in again.stdout
            await reaches(redis, draft_id, "sent")
            assert isinstance(sink.handler, FaultySink)
            assert (sink.handler.delivered, sink.handler.duplicates) == (1, 0)
            # Its old dead letter is not left waiting for a replay that would send nothing.
            letters = cli_in_process(fixed, "dlq", "list", "--json")
            assert orjson.loads(letters.stdout) == []
            worker.terminate()


@pytest.mark.slow
async def test_a_replayed_send_that_had_failed_for_good_sends_the_draft(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    (draft_id,) = await seed(redis, "ann@one.example")
    env = env_for(redis_url, **FAST)  # no SMTP server: the send fails for good
    with faulty_sink(tmp_path / "mail") as sink:
        with WorkerProcess(env, tmp_path / "worker.log") as worker:
            worker.wait_ready()
            assert cli_in_process(env, "approve", draft_id).returncode == 0
            await reaches(redis, draft_id, "send_failed")
            [(entry, _)] = await redis.xrange(KEYS.dead_letters)
            shown = cli_in_process(env, "dlq", "show", entry)
            assert "replay   possible" in shown.stdout
            worker.terminate()

            fixed = env_for(redis_url, **FAST, **smtp_env(sink))
            worker.start(fixed)
            worker.wait_ready()
            replayed = cli_in_process(fixed, "dlq", "replay", entry)
            assert replayed.returncode == 0, replayed.stdout
            await reaches(redis, draft_id, "sent")
            worker.terminate()
        assert isinstance(sink.handler, FaultySink)
        assert sink.handler.delivered == 1


@pytest.mark.slow
async def test_approve_says_when_the_send_was_already_queued(redis_url: str, redis: Redis) -> None:
    (draft_id,) = await seed(redis, "ann@one.example")
    env = env_for(redis_url)
    first = cli_in_process(env, "approve", draft_id)
    assert first.returncode == 0, first.stderr
    assert f"send queued as send:{draft_id}" in first.stdout
    second = cli_in_process(env, "approve", draft_id, "--json")
    assert second.returncode == 0, second.stderr
    answer = orjson.loads(second.stdout)
    assert (answer["job_id"], answer["queued_now"], answer["job_state"]) == (
        f"send:{draft_id}",
        False,
        "queued",
    )
    human = cli_in_process(env, "approve", draft_id)
    assert f"its send send:{draft_id} was already queued (queued)" in human.stdout
    assert await redis.zcard("arq:queue") == 1


async def test_resolve_with_both_sent_and_retry_is_a_usage_error(
    redis_url: str, redis: Redis
) -> None:
    (draft_id,) = await seed(redis, "ann@one.example")
    await reply(redis.hset(KEYS.draft(draft_id), mapping={"state": "unknown", "attempts": "1"}))
    done = cli_in_process(env_for(redis_url), "outbox", "resolve", draft_id, "--sent", "--retry")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "Error: --sent and --retry contradict each other: give one"
    )
    assert await state_of(redis, draft_id) == "unknown"
    assert await redis.zcard("arq:queue") == 0


@pytest.mark.slow
async def test_an_unknown_send_is_not_replayed_and_resolve_clears_its_dead_letter(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    (draft_id,) = await seed(redis, "ann@one.example")
    await reply(redis.hset(KEYS.draft(draft_id), mapping={"state": "unknown", "attempts": "1"}))
    env = env_for(redis_url, **FAST)
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        worker.wait_ready()
        payload = orjson.dumps({"draft_id": draft_id}).decode()
        queued = cli_in_process(env, "enqueue", "send_outreach", "--payload", payload)
        assert queued.returncode == 0, queued.stderr
        await until(lambda: reply(redis.xlen(KEYS.dead_letters)))
        [(entry, _)] = await redis.xrange(KEYS.dead_letters)

        listed = cli_in_process(env, "outbox", "list")
        assert listed.returncode == 0, listed.stderr
        assert draft_id in listed.stdout and "unknown" in listed.stdout
        shown = cli_in_process(env, "dlq", "show", entry)
        assert f"outbox resolve {draft_id} --sent" in shown.stdout
        assert "possible" not in shown.stdout
        replay = cli_in_process(env, "dlq", "replay", entry)
        assert replay.returncode == 1, replay.stdout
        assert "not replayed" in replay.stdout
        assert f"outbox resolve {draft_id}" in replay.stdout
        assert await state_of(redis, draft_id) == "unknown"

        resolved = cli_in_process(env, "outbox", "resolve", draft_id, "--sent")
        assert resolved.returncode == 0, resolved.stderr
        assert orjson.loads(cli_in_process(env, "dlq", "list", "--json").stdout) == []
        assert await state_of(redis, draft_id) == "sent"
        worker.terminate()


@pytest.mark.slow
async def test_drafts_list_has_a_header_aligned_columns_and_a_limit(
    redis_url: str, redis: Redis
) -> None:
    await seed(redis, "ann@one.example", "bartholomew@two.example")
    env = env_for(redis_url)
    listed = cli_in_process(env, "drafts", "list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "STATE", "TO", "SUBJECT"]
    assert len(rows) == 2
    # Each column starts where its header does.
    to_at = header.index("TO")
    assert [row[to_at:].split()[0] for row in rows] == [
        "ann@one.example",
        "bartholomew@two.example",
    ]
    assert [row.index("Hello") for row in rows] == [header.index("SUBJECT")] * 2
    limited = cli_in_process(env, "drafts", "list", "--limit", "1", "--json")
    assert [draft["id"] for draft in orjson.loads(limited.stdout)] == ["d1"]
    idle = cli_in_process(env, "outbox", "list")
    assert (idle.returncode, idle.stdout) == (0, "no send waits for a person\n")
