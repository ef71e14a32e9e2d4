"""Health on the metrics port: /healthz follows this worker's own event loop, /readyz its Redis.
Real arq workers in this process (the loop must be blocked from inside), real redis-servers."""

import asyncio
import contextlib
import shutil
import threading
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

import httpx
import pytest
from arq.worker import Worker
from redis.exceptions import RedisError

from settings import Settings
from worker.local.embedded import free_port, redis_server
from worker.observability.ports import HEALTH_PATH, READY_PATH

from .conftest import make_settings, make_worker
from .scrape import base_url, scrape


def probe_settings(redis_url: str, port: int) -> Settings:
    return make_settings(redis_url, metrics_port=port, metrics_host="127.0.0.1", health_stale_s=0.5)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Worker]:
    worker = make_worker(settings, burst=False)
    task = asyncio.create_task(worker.main())
    try:
        yield worker
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        try:
            await worker.close()
        except (RedisError, OSError):
            # With its Redis gone, arq's close fails before its shutdown hook: stop ours anyway.
            await worker.ctx["exit_stack"].aclose()
            with contextlib.suppress(RedisError, OSError):
                await worker.pool.aclose()


async def wait_status(port: int, path: str, status: int, timeout_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: int | str = "no answer"
    async with httpx.AsyncClient(timeout=2) as http:
        while asyncio.get_running_loop().time() < deadline:
            try:
                last = (await http.get(base_url(port) + path)).status_code
            except httpx.TransportError as exc:
                last = type(exc).__name__
            if last == status:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never answered {status}; last: {last}")


async def test_healthz_fails_while_the_worker_loop_is_blocked(redis_url: str) -> None:
    port = free_port()
    async with running(probe_settings(redis_url, port)):
        await wait_status(port, HEALTH_PATH, 200)
        blocked, answered = threading.Event(), threading.Event()
        statuses: list[int] = []

        def probe() -> None:
            blocked.wait(10)
            deadline = time.monotonic() + 10
            with httpx.Client(timeout=2) as http:
                while time.monotonic() < deadline:
                    statuses.append(http.get(base_url(port) + HEALTH_PATH).status_code)
                    if statuses[-1] == 503:
                        break
            answered.set()

        thread = threading.Thread(target=probe)
        thread.start()
        blocked.set()
        # Like a job that hogs the loop: nothing else on this loop runs until the probe, served
        # from the metrics thread, has seen the loop stuck.
        answered.wait(15)
        thread.join()
        assert statuses, "the probe got no answer"
        assert statuses[-1] == 503, statuses
        # Once the loop runs again, so does its heartbeat.
        await wait_status(port, HEALTH_PATH, 200)


async def test_healthz_fails_while_the_poll_loop_is_stuck(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event loop is free but arq's poll loop waits on a call that never returns."""
    port = free_port()
    async with running(probe_settings(redis_url, port)) as worker:
        await wait_status(port, HEALTH_PATH, 200)
        release = asyncio.Event()

        async def stuck() -> None:
            await release.wait()

        monkeypatch.setattr(worker, "_poll_iteration", stuck)
        await wait_status(port, HEALTH_PATH, 503)
        async with httpx.AsyncClient(timeout=2) as http:
            answer = await http.get(base_url(port) + HEALTH_PATH)
        assert "poll loop last passed" in answer.text
        monkeypatch.undo()
        release.set()
        await wait_status(port, HEALTH_PATH, 200)


async def test_readyz_fails_when_redis_goes_and_healthz_does_not(redis_url: str) -> None:
    binary = shutil.which("redis-server")
    assert binary is not None
    port = free_port()
    with ExitStack() as own_redis:
        server = own_redis.enter_context(redis_server(binary, free_port()))
        async with running(probe_settings(server.url, port)):
            await wait_status(port, READY_PATH, 200)
            own_redis.close()  # stops this test's redis-server
            await wait_status(port, READY_PATH, 503)
            await wait_status(port, HEALTH_PATH, 200)
            figures = await scrape(port)
            assert figures.value("prospect_worker_redis_errors_total", component="readiness") >= 1
