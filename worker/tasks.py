"""A worker's background tasks: stopping them at shutdown (cancel, wait a bounded time, say
which failed or would not stop), shared by the engine (renewal, promoter, wake-up listener) and
observability (heartbeat, metrics sampler); and the event loop's handler for a failure nobody
retrieved (arq's per-job tasks among them), logged once through the project's logger."""

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from worker.connections import INFRASTRUCTURE_ERRORS

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


def log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler: asyncio calls it once per failure nobody handled (a task
    collected with its exception never retrieved, a callback that raised). Logged once as the
    project's line (JSON with its traceback as a field under PW_LOG_FORMAT=json), where asyncio's
    default handler printed a raw traceback through its own logger."""
    error = context.get("exception")
    task = context.get("task") or context.get("future")
    where = f" (task {task.get_name()})" if isinstance(task, asyncio.Task) else ""
    message = context.get("message", "unhandled error in the event loop")
    if error is None:
        log.error("%s%s", message, where)
    elif isinstance(error, INFRASTRUCTURE_ERRORS):
        # Redis (or the network) was away: the traceback says nothing the error does not, and
        # a long outage ends many job tasks this way (each job runs again once its marker lapses).
        log.warning("%s%s: %s: %s", message, where, type(error).__name__, error)
    else:
        log.error("%s%s: %s: %s", message, where, type(error).__name__, error, exc_info=error)


def install_loop_handler() -> None:
    """Route the running loop's unhandled failures to `log_loop_exception`."""
    asyncio.get_running_loop().set_exception_handler(log_loop_exception)
