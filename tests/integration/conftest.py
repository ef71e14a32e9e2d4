"""Helpers for integration tests: settings on the session's Redis, and real arq workers."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from arq.worker import get_kwargs

from jobs.deps import Deps
from settings import Settings
from worker.app import worker_settings
from worker.client import QueueClient
from worker.engine import EngineWorker

FAST_RETRY = {"max_tries": 3, "base_delay_s": 0.05, "max_delay_s": 0.2}


def make_settings(redis_url: str, **overrides: Any) -> Settings:
    overrides.setdefault("retry", FAST_RETRY)
    # In-process workers serve no metrics port unless a test asks (tests pick free ports).
    overrides.setdefault("metrics_port", 0)
    return Settings(REDIS_URL=redis_url, **overrides)


def make_worker(
    settings: Settings,
    *,
    adjust_deps: Callable[[Deps], Deps] | None = None,
    burst: bool = True,
) -> EngineWorker:
    # arq annotates get_kwargs as returning dict[str, NameError]; the values are settings.
    kwargs: dict[str, Any] = get_kwargs(worker_settings(settings, adjust_deps=adjust_deps))
    kwargs.update(burst=burst, poll_delay=0.01, handle_signals=False)
    return EngineWorker(**kwargs)


async def drain(
    settings: Settings, adjust_deps: Callable[[Deps], Deps] | None = None
) -> EngineWorker:
    """Run a burst worker until the queue is empty (retries included)."""
    worker = make_worker(settings, adjust_deps=adjust_deps)
    try:
        await worker.main()
    finally:
        await worker.close()
    return worker


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[QueueClient]:
    queue = await QueueClient.connect(settings)
    yield queue
    await queue.close()
