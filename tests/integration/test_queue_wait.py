"""The queue wait the observers see (the `job_queue_wait_seconds` histogram, the job log's
`waited`) runs from when a job became due, not from its score: a job of a priority class is
scored ahead of its due time by its shift (worker/scheduling/queueorder.py), which must not count as
waiting. No clock is asserted on: each wait must lie within the span the test itself saw."""

import time
from typing import Any

from redis.asyncio import Redis

from jobs.deps import FanoutJob
from worker.engine.serializer import serialize
from worker.scheduling.fanout import BulkEnqueuer
from worker.scheduling.queueorder import PriorityScale

from .conftest import spec_worker
from .test_engine import echo_spec


class Waits:
    """An observer keeping each try's queue wait."""

    def __init__(self) -> None:
        self.waits: dict[tuple[str, int], float | None] = {}

    def started(self, *, job_id: str, job_try: int, queue_wait_s: float | None, **_: Any) -> None:
        self.waits[(job_id, job_try)] = queue_wait_s

    def ended(self, outcome: Any) -> None:
        pass


async def test_the_wait_runs_from_the_due_time_not_from_the_priority_score(
    redis_url: str, redis: Redis
) -> None:
    scale = PriorityScale()  # a step of 10 minutes: a hot job is scored 30 minutes early
    enqueuer = BulkEnqueuer(
        redis, queue_name="arq:queue", serializer=serialize, expires_ms=60_000, scale=scale
    )
    jobs = [
        FanoutJob(job_id="hot", function="echo", payload={"text": "hot"}, priority="hot", rank=1),
        # Fails once, so its second try is re-scored in its class and promoted.
        FanoutJob(
            job_id="hot-retried",
            function="echo",
            payload={"text": "again", "fail_times": 1},
            priority="hot",
            rank=2,
        ),
        FanoutJob(job_id="plain", function="echo", payload={"text": "plain"}),
    ]
    waits = Waits()
    began = time.time()
    await enqueuer.enqueue_many(jobs)
    worker = spec_worker(redis_url, redis, echo_spec({}), observers=[waits])
    try:
        await worker.main()
    finally:
        await worker.close()
    span_s = time.time() - began

    assert set(waits.waits) == {("hot", 1), ("hot-retried", 1), ("hot-retried", 2), ("plain", 1)}
    for (job_id, job_try), wait in waits.waits.items():
        # Not the 30 minutes of the hot class's head start: within what the test saw.
        assert wait is not None and 0 <= wait <= span_s, (job_id, job_try, wait, span_s)
