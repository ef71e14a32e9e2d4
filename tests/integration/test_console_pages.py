"""The console's pages and actions over HTTP, on a real Redis after a real daily run: what each
role sees and may do, what an action answers (read back), and stored script shown as text."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from jobs.keys import Keys
from jobs.redisreply import reply
from settings import Settings
from tests.support.console import SECRET, browser, console_app, csrf_of, sign_in
from tests.support.runs import queued_drafts
from worker.keys import WorkerKeys
from worker.ops.context import open_ops
from worker.registry import DAILY_JOB
from worker.runtime.deadletter import DeadLetters

from .conftest import drain, make_settings

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


@pytest.fixture
def settings(redis_url: str) -> Settings:
    # A small run: three drafts from the first companies discovery gives.
    return make_settings(
        redis_url, daily_limit=3, discovery_cap=8, console={"session_secret": SECRET}
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    async with console_app(settings) as app:
        yield app


@asynccontextmanager
async def signed(app: Starlette, user: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with browser(app) as client:
        assert (await sign_in(client, user)).status_code == 303
        yield client, await csrf_of(client)


async def daily_run(settings: Settings) -> list[str]:
    """A real daily run on the offline stand-ins; the ids of the drafts it queued."""
    async with open_ops(settings) as ops:
        await ops.client.enqueue(DAILY_JOB)
        await drain(settings)
        entries = await ops.redis.xrange(ops.keys.approvals)
    return [fields["company_id"] for _, fields in entries]


async def plant_script(redis: Redis, draft_id: str) -> None:
    """What a stranger could put in Redis through the pipeline: a company name and a draft's
    body with a script in them, a page title and a subject that close an attribute."""
    keys = Keys()
    run_id = await reply(redis.hget(keys.draft(draft_id), "run_id"))
    assert run_id
    await reply(
        redis.hset(keys.draft(draft_id), mapping={"subject": IMG, "body": SCRIPT + "\nhello"})
    )
    plan = json.loads(await redis.get(keys.run_plan(run_id)))
    for company in plan["chosen"]:
        if company["id"] == draft_id:
            company["name"] = SCRIPT
    await redis.set(keys.run_plan(run_id), json.dumps(plan))
    checkpoint = await reply(redis.hget(keys.prospect(run_id, draft_id), "enrichment"))
    assert checkpoint
    enrichment = json.loads(checkpoint)
    if enrichment.get("website"):
        enrichment["website"]["title"] = IMG
    await reply(redis.hset(keys.prospect(run_id, draft_id), "enrichment", json.dumps(enrichment)))


def assert_shown_as_text(html: str) -> None:
    assert SCRIPT not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


async def test_stored_script_in_drafts_dead_letters_jobs_and_audit_stays_text(
    app: Starlette, settings: Settings, redis: Redis
) -> None:
    draft_id = (await daily_run(settings))[0]
    await plant_script(redis, draft_id)
    letters = DeadLetters(
        redis, WorkerKeys(), queue_name=settings.queue_name, job_expires_ms=60_000
    )
    entry = await letters.add(
        job_id=IMG,
        function="cleanup",
        kind="failed",
        error_type="ValueError",
        error=SCRIPT + IMG,
        tries=1,
        payload={"name": SCRIPT, "title": IMG},
    )
    async with signed(app, "olivia") as (client, token):
        drafts = (await client.get("/drafts")).text
        assert_shown_as_text(drafts)
        assert "hello" in drafts  # the body is there, as text
        assert_shown_as_text((await client.get("/dead-letters")).text)
        letter = (await client.get("/dead-letters/show", params={"id": entry})).text
        assert SCRIPT not in letter and "<img src=x" not in letter
        assert "&lt;script&gt;" in letter
        # A refused action repeats the stranger's text in its line: still text.
        refused = await client.post(
            "/suppression/add", data={"csrf_token": token, "address": SCRIPT, "reason": IMG}
        )
        assert refused.status_code == 400
        assert (
            SCRIPT not in refused.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in refused.text
        )
        audit = (await client.get("/audit")).text
        assert SCRIPT not in audit and "&lt;script&gt;" in audit


def approve_buttons(html: str) -> int:
    return html.count('action="/drafts/approve"')


async def test_a_viewer_sees_no_approve_button_and_the_same_post_is_refused(
    app: Starlette, redis: Redis
) -> None:
    draft_id = (await queued_drafts(redis, 3))[0]
    async with signed(app, "vera") as (client, token):
        page = (await client.get("/drafts")).text
        assert f"Draft {draft_id} ·" in page and approve_buttons(page) == 0
        assert "/dead-letters/replay" not in (await client.get("/dead-letters")).text
        assert 'action="/controls/pause"' not in (await client.get("/controls")).text
        refused = await client.post(
            "/drafts/approve", data={"csrf_token": token, "draft_id": draft_id}
        )
        assert refused.status_code == 403
    async with signed(app, "alan") as (client, _):
        page = (await client.get("/drafts")).text
        assert approve_buttons(page) == 3
        assert 'action="/controls/pause"' not in (await client.get("/controls")).text
    async with signed(app, "olivia") as (client, _):
        assert 'action="/controls/pause"' in (await client.get("/controls")).text
    state = await reply(redis.hget(Keys().draft(draft_id), "state"))
    assert state == "pending"


async def test_approving_twice_queues_one_send_and_the_answer_follows_its_state(
    app: Starlette, settings: Settings, redis: Redis
) -> None:
    draft_id = (await queued_drafts(redis, 3))[0]
    async with signed(app, "alan") as (client, token):
        form = {"csrf_token": token, "draft_id": draft_id}
        first = await client.post("/drafts/approve", data=form, headers={"HX-Request": "true"})
        assert first.status_code == 200
        assert f"approved {draft_id}; send queued as send:{draft_id}" in first.text
        assert "<html" not in first.text  # a fragment for htmx
        assert f'hx-get="/drafts/state?id={draft_id}"' in first.text
        second = await client.post("/drafts/approve", data=form)
        assert second.status_code == 200 and "<html" in second.text  # a page without htmx
        assert "was already queued" in second.text and "nothing new queued" in second.text
        state = await client.get("/drafts/state", params={"id": draft_id})
        assert "approved" in state.text
    queued = await redis.zrange(settings.queue_name, 0, -1)
    assert queued.count(f"send:{draft_id}") == 1


async def test_edit_then_approve_lands_the_edited_text_and_reject_keeps_the_reason(
    app: Starlette, redis: Redis
) -> None:
    first, second, third = await queued_drafts(redis, 3)
    async with signed(app, "alan") as (client, token):
        edited = await client.post(
            "/drafts/edit",
            data={
                "csrf_token": token,
                "draft_id": first,
                "subject": "A better subject",
                "body": "Line one\r\nLine two",
            },
        )
        assert edited.status_code == 200 and f"edited and approved {first}" in edited.text
        header = await client.post(
            "/drafts/edit",
            data={"csrf_token": token, "draft_id": second, "subject": "two\r\nBcc: x@y.example"},
        )
        assert header.status_code == 400  # a header injection is refused, nothing changed
        rejected = await client.post(
            "/drafts/reject", data={"csrf_token": token, "draft_id": second, "reason": "not a fit"}
        )
        assert f"rejected {second}" in rejected.text
        several = await client.post(
            "/drafts/approve-several",
            data={"csrf_token": token, "draft_id": [first, second, third]},
        )
        # The edited one's send was queued already, the rejected one is not approved.
        assert "approved 2 of 3" in several.text
        assert (
            f"not approved {second}: cannot approve draft {second}: it is rejected" in several.text
        )
        assert "was already queued" in several.text
    draft = await reply(redis.hgetall(Keys().draft(first)))
    assert (draft["subject"], draft["body"]) == ("A better subject", "Line one\nLine two")
    assert await reply(redis.hget(Keys().draft(second), "reason")) == "not a fit"
    assert await reply(redis.hget(Keys().draft(third), "state")) == "approved"


async def test_dead_letters_replay_once_then_say_so_and_purge_wants_a_confirmation(
    app: Starlette, settings: Settings, redis: Redis
) -> None:
    letters = DeadLetters(
        redis, WorkerKeys(), queue_name=settings.queue_name, job_expires_ms=60_000
    )
    entries = [
        await letters.add(
            job_id=f"job-{i}",
            function="cleanup",
            kind="failed",
            error_type="ValueError",
            error=f"boom {i}",
            tries=3,
            payload=None,
        )
        for i in range(3)
    ]
    async with signed(app, "olivia") as (client, token):
        listing = (await client.get("/dead-letters", params={"error": "ValueError"})).text
        assert all(entry in listing for entry in entries)
        first = await client.post(
            "/dead-letters/replay", data={"csrf_token": token, "entry_id": entries[0]}
        )
        assert "replayed 1 of 1" in first.text
        again = await client.post(
            "/dead-letters/replay", data={"csrf_token": token, "entry_id": entries[0]}
        )
        assert "already replayed" in again.text and "by olivia" in again.text
        unconfirmed = await client.post(
            "/dead-letters/purge", data={"csrf_token": token, "scope": "all"}
        )
        assert unconfirmed.status_code == 400
        assert await redis.xlen(WorkerKeys().dead_letters) == 2
        purged = await client.post(
            "/dead-letters/purge", data={"csrf_token": token, "scope": "all", "confirm": "purge"}
        )
        assert "purged 2 dead letter(s)" in purged.text
        assert await redis.xlen(WorkerKeys().dead_letters) == 0


async def test_controls_pause_resume_and_a_daily_run_wants_an_explicit_backfill_choice(
    app: Starlette, redis: Redis
) -> None:
    async with signed(app, "olivia") as (client, token):
        paused = await client.post(
            "/controls/pause", data={"csrf_token": token, "job_type": "cleanup"}
        )
        assert "paused cleanup; paused now: cleanup" in paused.text
        assert "paused" in (await client.get("/controls")).text
        resumed = await client.post("/controls/resume", data={"csrf_token": token})
        assert "resumed the queue; paused now: nothing" in resumed.text
        unchosen = await client.post("/controls/daily-run", data={"csrf_token": token})
        assert unchosen.status_code == 400
        today = await client.post(
            "/controls/daily-run", data={"csrf_token": token, "backfill": "no"}
        )
        assert today.status_code == 200 and "queued the daily run for" in today.text
        dateless = await client.post(
            "/controls/daily-run", data={"csrf_token": token, "backfill": "yes"}
        )
        assert dateless.status_code == 400
    assert await redis.zcard("arq:queue") == 1
    audit_entries = await redis.xlen(WorkerKeys().audit)
    assert audit_entries >= 3


async def test_suppression_add_reads_back_and_a_second_add_says_nothing_changed(
    app: Starlette,
) -> None:
    async with signed(app, "alan") as (client, token):
        form = {"csrf_token": token, "address": "Someone@Example.com", "reason": "asked us"}
        assert (
            "suppressed someone@example.com: asked us"
            in (await client.post("/suppression/add", data=form)).text
        )
        again = await client.post("/suppression/add", data={**form, "reason": "again"})
        assert "was suppressed already (asked us)" in again.text
        listing = (await client.get("/suppression")).text
        assert re.search(r"someone@example.com</td><td>asked us", listing)


async def test_today_jobs_and_charts_show_a_real_run(app: Starlette, settings: Settings) -> None:
    await daily_run(settings)
    async with signed(app, "vera") as (client, _):
        today = (await client.get("/")).text
        assert "complete" in today and "Funnel" in today
        live = (await client.get("/today/live", headers={"HX-Request": "true"})).text
        assert "<html" not in live and "Funnel" in live
        run_id = re.search(r"Run (\d{4}-\d{2}-\d{2})", today)
        assert run_id
        job = (await client.get("/jobs", params={"id": f"daily:{run_id.group(1)}"})).text
        assert "Payload" in job
        figures = (await client.get("/charts/data")).json()
        assert len(figures["hours"]) == 48
        assert any(line["job_type"] == DAILY_JOB for line in figures["types"])


async def test_an_unknown_send_is_resolved_as_sent_or_retried_after_the_warning(
    app: Starlette, redis: Redis
) -> None:
    first, second, _ = await queued_drafts(redis, 3)
    keys = WorkerKeys()
    for draft_id in (first, second):  # approved, then a worker stopped mid-send
        fields = {"state": "unknown", "attempts": "1", "approved_ms": "1"}
        await reply(redis.hset(keys.draft(draft_id), mapping=fields))
        await redis.zadd(keys.unknown_sends, {draft_id: 1_764_000_000_000})
    async with signed(app, "olivia") as (client, token):
        page = (await client.get("/outbox")).text
        rows = [f'name="draft_id" value="{draft_id}"' for draft_id in (first, second)]
        assert all(row in page for row in rows) and "may send twice" in page
        form = {"csrf_token": token, "draft_id": first, "outcome": "retry"}
        unticked = await client.post("/outbox/resolve", data=form)
        assert unticked.status_code == 400 and "may send the email twice" in unticked.text
        retried = await client.post("/outbox/resolve", data={**form, "understood": "yes"})
        assert retried.status_code == 200
        assert "a retry may send twice" in retried.text and "send queued as" in retried.text
        assert f'hx-get="/drafts/state?id={first}"' in retried.text
        sent = await client.post(
            "/outbox/resolve", data={"csrf_token": token, "draft_id": second, "outcome": "sent"}
        )
        assert sent.status_code == 200 and f"{second}: sent" in sent.text
        odd = await client.post(
            "/outbox/resolve", data={"csrf_token": token, "draft_id": second, "outcome": "maybe"}
        )
        assert odd.status_code == 400
        # The row's form field, not the bare id: "d1" can turn up inside a random token.
        assert f'name="draft_id" value="{first}"' not in (await client.get("/outbox")).text


async def test_pages_answer_a_bad_or_unknown_id_with_its_status(app: Starlette) -> None:
    async with signed(app, "olivia") as (client, token):
        assert (await client.get("/drafts", params={"state": "lost"})).status_code == 400
        assert (await client.get("/drafts", params={"state": "all"})).status_code == 200
        assert (await client.get("/drafts/state", params={"id": "nobody"})).status_code == 404
        gone = await client.get("/dead-letters/show", params={"id": "1-0"})
        assert gone.status_code == 404 and "no dead letter" in gone.text
        empty = await client.post("/dead-letters/replay", data={"csrf_token": token})
        assert empty.status_code == 400
        form = {"csrf_token": token, "confirm": "purge", "scope": "older"}
        ageless = await client.post("/dead-letters/purge", data={**form, "older_than_h": "soon"})
        assert ageless.status_code == 400
        aged = await client.post("/dead-letters/purge", data={**form, "older_than_h": "24"})
        assert aged.status_code == 200 and "purged 0 dead letter(s)" in aged.text


async def test_two_approvers_at_once_queue_one_send(
    app: Starlette, settings: Settings, redis: Redis
) -> None:
    draft_id = (await queued_drafts(redis, 3))[0]
    async with signed(app, "alan") as (alan, alan_token), signed(app, "olivia") as (olivia, token):
        answers = await asyncio.gather(
            *(
                client.post("/drafts/approve", data={"csrf_token": csrf, "draft_id": draft_id})
                for client, csrf in [(alan, alan_token), (olivia, token)] * 3
            )
        )
    assert all(answer.status_code == 200 for answer in answers)
    assert sum("nothing new queued" not in answer.text for answer in answers) == 1
    queued = await redis.zrange(settings.queue_name, 0, -1)
    assert queued.count(f"send:{draft_id}") == 1
