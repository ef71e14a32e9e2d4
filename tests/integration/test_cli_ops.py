"""The CLI's door onto worker/ops: `suppress` and `audit`, and what every action leaves in the
audit log (the OS user as an operator, from this host); each command called in-process."""

import getpass
import socket

import orjson
from redis.asyncio import Redis

from jobs.redisreply import reply
from tests.integration.test_ops import seed
from tests.support.cli import cli_in_process
from tests.support.processes import env_for
from worker.keys import WorkerKeys

KEYS = WorkerKeys()


async def test_suppress_then_audit_shows_who_did_what_from_where(
    redis_url: str, redis: Redis
) -> None:
    env = env_for(redis_url)
    done = cli_in_process(env, "suppress", "Pat@Acme.example", "--reason", "asked by phone")
    assert (done.returncode, done.stdout.strip()) == (
        0,
        "suppressed pat@acme.example: asked by phone",
    )
    again = cli_in_process(env, "suppress", "pat@acme.example", "--reason", "x", "--json")
    answer = orjson.loads(again.stdout)
    assert (answer["added"], answer["reason"]) == (False, "asked by phone")
    assert isinstance(answer["at_ms"], int)
    bad = cli_in_process(env, "suppress", "nobody", "--reason", "x")
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == ["Error: 'nobody' is not an email address"]
    assert await reply(redis.smembers(KEYS.suppressed_addresses)) == {"pat@acme.example"}
    missing = cli_in_process(env, "reject", "nope", "--reason", "x")
    assert missing.returncode == 1
    assert "Try: prospect-worker drafts list shows the drafts" in missing.stderr

    listed = cli_in_process(env, "audit", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = orjson.loads(listed.stdout)
    assert [(e["action"], e["outcome"].split(":")[0]) for e in entries] == [
        ("reject", "refused (not_found)"),
        ("suppress", "refused (invalid)"),
        ("suppress", "pat@acme.example was suppressed already (asked by phone)"),
        ("suppress", "suppressed pat@acme.example"),
    ]
    assert {(e["actor"], e["role"], e["door"], e["source"]) for e in entries} == {
        (getpass.getuser(), "operator", "cli", socket.gethostname())
    }
    page = cli_in_process(env, "audit", "--limit", "2", "--before", entries[1]["id"])
    lines = page.stdout.splitlines()
    assert lines[0].split() == ["WHEN", "(UTC)", "WHO", "FROM", "ACTION", "TARGET", "OUTCOME"]
    assert len(lines) == 3 and "suppressed already" in lines[1]
    wrong = cli_in_process(env, "audit", "--before", "yesterday")
    assert wrong.returncode == 2 and "not an audit entry id" in wrong.stderr


async def test_an_edit_after_approval_is_refused_and_nothing_changes(
    redis_url: str, redis: Redis
) -> None:
    (draft_id,) = await seed(redis)
    env = env_for(redis_url)
    assert cli_in_process(env, "approve", draft_id).returncode == 0
    late = cli_in_process(env, "approve", draft_id, "--subject", "Too late")
    assert late.returncode == 1
    assert f"cannot edit draft {draft_id}: it is approved" in late.stderr
    assert await reply(redis.hget(KEYS.draft(draft_id), "subject")) == "Hello"
    injected = cli_in_process(env, "approve", "d9", "--subject", "a\nBcc: x@y.example")
    assert injected.returncode == 2 and "one line" in injected.stderr
