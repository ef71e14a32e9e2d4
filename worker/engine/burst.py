"""A worker in this process that drains the queue and stops: what the `run` and `outreach-demo`
commands use, built from the same WorkerSettings class as `arq worker.WorkerSettings`."""

from typing import Any
from unittest.mock import patch

from arq.worker import get_kwargs

from worker.engine.worker import EngineWorker


class BurstWorker:
    def __init__(
        self, worker_settings: type, *, skip_info: bool, poll_delay_s: float | None = None
    ) -> None:
        # arq annotates get_kwargs as returning dict[str, NameError]; the values are Worker's
        # arguments.
        kwargs: dict[str, Any] = get_kwargs(worker_settings)
        if poll_delay_s is not None:
            kwargs["poll_delay"] = poll_delay_s
        self._worker = EngineWorker(**kwargs, burst=True, handle_signals=False)
        self._skip_info = skip_info

    async def drain(self) -> None:
        """Run until the queue is empty. fakeredis's server has no INFO, which arq's start-up
        log line asks for, so that one call is skipped there (`skip_info`)."""
        if not self._skip_info:
            return await self._worker.main()
        with patch("arq.worker.log_redis_info", new=_no_info):
            return await self._worker.main()

    async def close(self) -> None:
        await self._worker.close()


async def _no_info(*args: Any) -> None:
    return None
