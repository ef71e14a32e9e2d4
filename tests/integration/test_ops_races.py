"""Two people approving one draft at once, each in a process of their own, beside a real worker
and an SMTP sink: one message per draft at the sink; and an edited draft sends the edited text."""

import asyncio
from email import message_from_bytes, policy
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from jobs.redisreply import reply
from tests.integration.test_ops import KEYS, seed
from tests.support.processes import WorkerProcess, env_for, run_cli
from tests.support.smtp_server import FaultySink, faulty_sink, smtp_env
from tests.support.until import until
from worker.ops.audit import AuditLog


async def all_sent(redis: Redis, draft_ids: list[str]) -> bool:
    states = [await reply(redis.hget(KEYS.draft(d), "state")) for d in draft_ids]
    return states == ["sent"] * len(draft_ids)


@pytest.mark.slow
@pytest.mark.timeout(180)  # five CLI processes and a worker, on a machine that may be busy
async def test_two_approvals_at_once_send_one_message_and_an_edit_is_what_is_sent(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    *raced, edited = await seed(redis, 3)
    with faulty_sink(tmp_path / "mail") as sink:
        env = env_for(redis_url, **smtp_env(sink))
        with WorkerProcess(env, tmp_path / "worker.log") as worker:
            worker.wait_ready()
            # Every approval at once: two processes per raced draft, and the edit.
            calls: list[tuple[str, ...]] = [
                ("approve", d, "--json") for d in raced for _ in range(2)
            ]
            calls.append(
                ("approve", edited, "--subject", "Edited subject", "--body", "Edited body.")
            )
            *approvals, changed = await asyncio.gather(
                *(asyncio.to_thread(run_cli, env, *call) for call in calls)
            )
            for draft_id, pair in zip(
                raced, zip(approvals[::2], approvals[1::2], strict=True), strict=True
            ):
                answers = [orjson.loads(done.stdout) for done in pair if done.returncode == 0]
                # The later one finds the send queued, or (the worker was quicker) the draft
                # already being sent or sent: refused, nothing queued.
                refused = [done.stderr for done in pair if done.returncode != 0]
                assert all(f"cannot approve draft {draft_id}" in line for line in refused), refused
                assert [a["queued_now"] for a in answers].count(True) == 1, answers
            assert changed.returncode == 0, changed.stderr
            assert changed.stdout.startswith(f"edited and approved {edited}")

            async def sent() -> bool:
                return await all_sent(redis, [*raced, edited])

            await until(sent)
            worker.terminate()
        handler = sink.handler
        assert isinstance(handler, FaultySink)
        assert (handler.delivered, handler.duplicates) == (3, 0)
    messages = [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in (tmp_path / "mail").glob("*.eml")
    ]
    [mine] = [m for m in messages if m["To"] == "p3@one.example"]
    assert mine["Subject"] == "Edited subject"
    body = mine.get_body(preferencelist=("plain",))
    assert body is not None and "Edited body." in body.get_content()
    entries = await AuditLog(redis, KEYS).page(100)
    assert len(entries) == 2 * len(raced) + 1
    assert {(e.door, e.role, e.action) for e in entries} == {
        ("cli", "operator", "approve"),
        ("cli", "operator", "edit and approve"),
    }
