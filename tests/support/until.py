"""Waiting on a condition read from outside the code under test (Redis, a sink, a log)."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def until(check: Callable[[], Awaitable[Any]], timeout_s: float = 60) -> Any:
    """What `check` returns once it is truthy, polled every 50 ms; fails on timeout."""
    deadline = time.monotonic() + timeout_s
    while not (found := await check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return found
