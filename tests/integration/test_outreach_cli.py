"""The approval commands as an operator runs them: `drafts list|show`, `approve`, `reject`,
`outbox resolve`, each called in-process (what it does with Redis is the point); the demo in
its own process."""

import asyncio
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from jobs.keys import Keys
from jobs.models import Draft
from jobs.prospecting.store import ProspectStore
from tests.support.cli import cli_in_process
from tests.support.processes import env_for, run_cli
from tests.support.runs import open_run

KEYS = Keys()


async def seed(redis_url: str) -> None:
    redis = Redis.from_url(redis_url, decode_responses=True)
    store = ProspectStore(redis, KEYS)
    await open_run(redis, "r", "c1", "c2")
    for company, address in (("c1", "ann@one.example"), ("c2", "bo@two.example")):
        draft = Draft(to=address, subject=f"Hi {company}", body="Hello.", writer="template")
        await store.queue_draft(
            run_id="r", company_id=company, draft=draft, score=70, day="d", limit=10
        )
    # A send that stopped mid-way, as the outbox leaves it.
    await redis.hset(KEYS.draft("c2"), mapping={"state": "unknown", "attempts": "1"})
    await redis.aclose()


def test_list_show_approve_reject_and_resolve(redis_url: str) -> None:
    asyncio.run(seed(redis_url))
    env = env_for(redis_url)

    listed = cli_in_process(env, "drafts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(d["id"], d["state"]) for d in orjson.loads(listed.stdout)] == [
        ("c1", "pending"),
        ("c2", "unknown"),
    ]
    shown = cli_in_process(env, "drafts", "show", "c1")
    assert shown.returncode == 0 and "ann@one.example" in shown.stdout
    assert "Hello." in shown.stdout

    approved = cli_in_process(env, "approve", "c1", "--subject", "Better subject", "--json")
    assert approved.returncode == 0, approved.stderr
    assert orjson.loads(approved.stdout)["job_id"] == "send:c1"
    edited = orjson.loads(cli_in_process(env, "drafts", "show", "c1", "--json").stdout)
    assert (edited["state"], edited["subject"]) == ("approved", "Better subject")

    refused = cli_in_process(env, "approve", "c2")
    assert refused.returncode == 1 and "it is unknown" in refused.stderr
    missing = cli_in_process(env, "reject", "nope", "--reason", "x")
    assert missing.returncode == 1 and "no draft 'nope'" in missing.stderr
    assert cli_in_process(env, "reject", "c1", "--reason", "wrong person").returncode == 0
    rejected = cli_in_process(env, "drafts", "list", "--state", "rejected")
    assert rejected.stdout.splitlines()[1].startswith("c1  rejected")

    assert cli_in_process(env, "outbox", "resolve", "c2").returncode == 2
    retried = cli_in_process(env, "outbox", "resolve", "c2", "--retry", "--json")
    assert retried.returncode == 0, retried.stderr
    resolution = orjson.loads(retried.stdout)
    assert (resolution["draft_id"], resolution["state"]) == ("c2", "approved")
    assert resolution["send"] == {
        "job_id": "send:c2:retry1",
        "queued_now": True,
        "job_state": "queued",
    }
    again = cli_in_process(env, "outbox", "resolve", "c2", "--sent")
    assert again.returncode == 1 and "it is approved" in again.stderr


@pytest.mark.slow
def test_the_outreach_demo_goes_all_the_way(tmp_path: Path) -> None:
    env = {k: v for k, v in env_for("redis://unused").items() if k != "REDIS_URL"}
    done = run_cli(env, "outreach-demo", "--mail-dir", str(tmp_path / "mail"), timeout=240)
    assert done.returncode == 0, done.stderr
    assert "duplicates by Message-ID  0" in done.stdout
    assert "replies                   interested, not_interested, out_of_office" in done.stdout
    assert "as suppressed 1" in done.stderr
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 5
    # A second run keeps its own messages only: the first run's are removed, and it says so.
    (tmp_path / "mail" / "notes.txt").write_text("not a message: kept")
    again = run_cli(env, "outreach-demo", "--mail-dir", str(tmp_path / "mail"), timeout=240)
    assert again.returncode == 0, again.stderr
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 5
    assert "(5 of an earlier run removed)" in again.stderr
    assert (tmp_path / "mail" / "notes.txt").exists()
