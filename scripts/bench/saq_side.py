"""SAQ's side of the suite: its Redis queue and worker, in burst mode, in its own process.

The child enqueues its own jobs with `Queue.enqueue` (untimed, before READY) and drains them with
`concurrency` at once in burst mode.

The drain ends at the last job's end (an after-process hook), not when the worker stops: a
burst worker's idle dequeuers wait out `dequeue_timeout` before it stops.
"""

import argparse
import asyncio
import logging
import time
from typing import Any

from saq import Queue, Worker

from scripts.bench.probe import RoundTrips, Span


async def task(ctx: dict[str, Any], *, seconds: float = 0.0) -> None:
    if seconds:
        await asyncio.sleep(seconds)


async def drain(args: argparse.Namespace) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO)  # as its CLI runs it: a line per job
    span = Span(RoundTrips())
    queue = Queue.from_url(args.redis)
    await queue.connect()
    if args.enqueue:
        for start in range(0, args.jobs, 500):
            batch = range(start, min(start + 500, args.jobs))
            await asyncio.gather(*(queue.enqueue("task", seconds=args.sleep) for _ in batch))
    ends: list[float] = []

    async def ended(ctx: dict[str, Any]) -> None:
        ends.append(time.time())

    worker = Worker(
        queue,
        functions=[task],
        concurrency=args.concurrency,
        burst=True,
        max_burst_jobs=args.jobs,
        dequeue_timeout=1.0,
        after_process=ended,
    )
    await span.ready_then_go()
    await worker.start()
    done = await queue.count("queued")
    result = span.result(args.jobs - done, end=max(ends, default=time.time()))
    await queue.disconnect()
    return result
