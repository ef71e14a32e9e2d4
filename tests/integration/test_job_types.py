"""A job type added by a module alone runs through the production wiring, and every Lua script
the wiring builds is loaded at start without a list of owners kept by hand."""

from typing import Any

import pytest
from arq.worker import get_kwargs
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from jobs.outreach.suppression import Suppressions
from settings import SettingsError
from tests.integration.conftest import make_settings, make_worker
from tests.support.bounce_job import BOUNCE
from worker.app import worker_settings
from worker.client import QueueClient
from worker.engine.worker import EngineWorker
from worker.keys import WorkerKeys
from worker.registry import JOB_TYPES, job_specs

KEYS = WorkerKeys()


async def test_a_job_type_declared_in_a_new_module_runs_through_a_real_worker(
    redis_url: str, redis: Redis
) -> None:
    # Its per-type setting is checked against the job types the worker is given.
    settings = make_settings(redis_url, jobs={BOUNCE.name: {"timeout_s": 8}})
    with pytest.raises(SettingsError, match="PW_JOBS__CHECK_BOUNCE: no job type"):
        job_specs(settings)
    types = (*JOB_TYPES, BOUNCE)
    specs = job_specs(settings, types)
    assert (specs[BOUNCE.name].timeout_s, specs[BOUNCE.name].max_tries) == (8.0, 1)

    client = await QueueClient.connect(settings, specs=specs)
    try:
        good = await client.enqueue(BOUNCE.name, {"address": "ada@acme.example"})
        gone = await client.enqueue(BOUNCE.name, {"address": "bob@acme.example", "bounced": True})
        kwargs: dict[str, Any] = get_kwargs(worker_settings(settings, job_types=types))
        kwargs.update(burst=True, poll_delay=0.01, handle_signals=False)
        worker = EngineWorker(**kwargs)
        try:
            await worker.main()
        finally:
            await worker.close()
        done, failed = await client.report(good), await client.report(gone)
    finally:
        await client.close()

    assert done.state == "complete"
    assert done.result == {"address": "ada@acme.example", "deliverable": True}
    assert done.progress is not None and done.progress.stage == "checked"
    assert failed.state == "failed"
    assert failed.error == "PermanentError: bob@acme.example: mailbox gone"
    letters = [fields for _, fields in await redis.xrange(KEYS.dead_letters)]
    assert [(f["job_id"], f["function"]) for f in letters] == [(gone, BOUNCE.name)]
    # The failure hook declared beside the body ran, once, with the failure.
    suppressions = Suppressions(Redis.from_url(redis_url, decode_responses=True), KEYS)
    try:
        reason = await suppressions.reason("bob@acme.example")  # "<reason> <when, ms>"
        assert reason is not None and reason.rsplit(" ", 1)[0] == failed.error
        assert not await suppressions.is_suppressed("ada@acme.example")
    finally:
        await suppressions._redis.aclose()  # noqa: SLF001 - the test's own connection


async def test_every_lua_script_built_at_start_is_loaded_at_start(
    redis_url: str, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every script object the production start-up builds, wherever it is built and kept.
    built: list[AsyncScript] = []
    construct = AsyncScript.__init__

    def recording(self: AsyncScript, *args: Any, **kwargs: Any) -> None:
        construct(self, *args, **kwargs)
        built.append(self)

    await redis.script_flush()
    monkeypatch.setattr(AsyncScript, "__init__", recording)
    worker = make_worker(make_settings(redis_url))  # burst, on an empty queue: start, then stop
    try:
        await worker.main()
    finally:
        await worker.close()
    monkeypatch.undo()

    shas = sorted({script.sha for script in built})
    assert len(shas) >= 10  # the domain's stores and the engine's parts
    loaded = await redis.script_exists(*shas)
    assert [sha for sha, ok in zip(shas, loaded, strict=True) if not ok] == []
