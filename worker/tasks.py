"""Stopping a worker's background tasks at shutdown: cancel them, wait a bounded time, and say
which failed or would not stop. Shared by the engine (renewal, promoter, wake-up listener) and
observability (heartbeat, metrics sampler)."""

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("prospect_worker.tasks")

STOP_WAIT_S = 5.0


async def stop_tasks(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Awaited, so that each gives its connection back before the pool closes (a task left
    pending is collected later as unclosed). Bounded, so that one which ignored its cancel
    cannot keep the process from exiting: `asyncio.wait`, not a timeout around `gather`, since
    a cancelled gather still waits for every child. Never `suppress(CancelledError)` around an
    await here: that would swallow a cancel of this very coroutine too."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    ended, stuck = await asyncio.wait(tasks, timeout=STOP_WAIT_S)
    for task in ended:
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("background task %s failed", task.get_name(), exc_info=error)
    for task in stuck:
        log.error("background task %s ignored its cancel; exiting", task.get_name())
