"""SAQ's side of the suite: its Redis queue and worker, in burst mode, in its own process.

The child enqueues its own jobs with `Queue.enqueue` (untimed, before READY) and drains them with
`concurrency` at once; the burst ends after the last of them (`max_burst_jobs`), so the drain's
end is not a dequeue timeout.
"""

import argparse
import asyncio
from typing import Any

from saq import Queue, Worker

from scripts.bench.probe import RoundTrips, Span


async def task(ctx: dict[str, Any], *, seconds: float = 0.0) -> None:
    if seconds:
        await asyncio.sleep(seconds)


async def drain(args: argparse.Namespace) -> dict[str, Any]:
    span = Span(RoundTrips())
    queue = Queue.from_url(args.redis)
    await queue.connect()
    if args.enqueue:
        for start in range(0, args.jobs, 500):
            batch = range(start, min(start + 500, args.jobs))
            await asyncio.gather(*(queue.enqueue("task", seconds=args.sleep) for _ in batch))
    worker = Worker(
        queue,
        functions=[task],
        concurrency=args.concurrency,
        burst=True,
        max_burst_jobs=args.jobs,
        dequeue_timeout=1.0,
    )
    await span.ready_then_go()
    await worker.start()
    done = await queue.count("queued")
    result = span.result(args.jobs - done)
    await queue.disconnect()
    return result
