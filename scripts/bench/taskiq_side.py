"""taskiq's side of the suite: taskiq-redis's stream broker (acknowledged deliveries), run in an
environment of its own (taskiq-redis needs redis-py 8; arq pins it below 6).

The child enqueues its own jobs with `kiq` (untimed, before READY), then runs a receiver with
`concurrency` async tasks until the last job has ended. taskiq has no burst mode: the task
counts itself, and the receiver is stopped when the count is reached.
"""

import argparse
import asyncio
import logging
import os
from typing import Any

from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

from scripts.bench.probe import RoundTrips, Span, emit


async def drain(args: argparse.Namespace) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO)  # as its CLI runs it: a line per job
    span = Span(RoundTrips())
    broker = RedisStreamBroker(args.redis)
    ended = asyncio.Event()
    count = [0]

    @broker.task(task_name="task")
    async def task(seconds: float = 0.0) -> None:
        if seconds:
            await asyncio.sleep(seconds)
        count[0] += 1
        if count[0] >= args.jobs:
            ended.set()

    await broker.startup()
    if args.enqueue:
        for start in range(0, args.jobs, 500):
            batch = range(start, min(start + 500, args.jobs))
            await asyncio.gather(*(task.kiq(seconds=args.sleep) for _ in batch))
    await span.ready_then_go()
    receiver = asyncio.create_task(
        run_receiver_task(broker, max_async_tasks=args.concurrency, run_startup=False)
    )
    await asyncio.wait([receiver, asyncio.create_task(ended.wait())], return_when="FIRST_COMPLETED")
    if not ended.is_set():
        raise RuntimeError(f"taskiq's receiver stopped after {count[0]} of {args.jobs} jobs")
    # taskiq 0.13's receiver keeps reading after it is cancelled (its listener swallows the
    # cancellation), so neither it nor asyncio.run's teardown ever ends: report, then leave.
    emit(span.result(count[0]))
    os._exit(0)
