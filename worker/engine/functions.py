"""A job spec as arq runs it: the `(ctx, *args, **kwargs)` function arq calls, its arq timeout
and its arq try count, handing every try to the runtime."""

import asyncio
import time
from datetime import datetime
from typing import Any

from arq.worker import Function, func

from worker.engine.worker import CTX_ENGINE, EngineWorker
from worker.runtime.fencing import CTX_OWNERSHIP, Ownership
from worker.runtime.runtime import CTX_CANCELLED, CTX_SPEC, NOT_READ, Runtime
from worker.runtime.spec import JobSpec

# arq's own timeout is a backstop only: ours fires first, and the bookkeeping after it is
# bounded (worker/runtime/runtime.py, BOOKKEEPING_S).
ARQ_TIMEOUT_GRACE_S = 10.0


def arq_timeout_s(spec: JobSpec[Any, Any]) -> float:
    """arq's backstop: twice our run timeout, plus the bookkeeping after it."""
    return 2 * spec.timeout_s + ARQ_TIMEOUT_GRACE_S


def arq_function(spec: JobSpec[Any, Any], *, max_redeliveries: int = 5) -> Function:
    """Adapt a job spec to arq's `(ctx, *args, **kwargs)` form."""
    timeout = arq_timeout_s(spec)

    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        runtime: Runtime = ctx["runtime"]
        ctx[CTX_SPEC] = spec
        started = time.monotonic()
        enqueued: datetime | None = ctx.get("enqueue_time")
        enqueued_ms = int(enqueued.timestamp() * 1000) if enqueued is not None else None
        ownership: Ownership | None = ctx.get(CTX_OWNERSHIP)
        try:
            engine: EngineWorker | None = ctx.get(CTX_ENGINE)
            kept = engine.claimed_shift(ctx["job_id"]) if engine is not None else NOT_READ
            due = await runtime.due_ms(ctx["job_id"], ctx.get("score"), enqueued_ms, kept)
            return await runtime.execute(
                spec,
                job_id=ctx["job_id"],
                delivery=ctx["job_try"],
                due_ms=due,
                args=args,
                kwargs=kwargs,
                ctx=ctx,
                fence=ownership.fence(ctx["job_id"]) if ownership is not None else None,
                score_ms=ctx.get("score"),
            )
        except asyncio.CancelledError:
            # Either arq's backstop timeout or a shutdown: the job-end hook tells them apart
            # by this mark.
            late = time.monotonic() - started >= timeout - 1
            ctx[CTX_CANCELLED] = "timeout" if late else "shutdown"
            raise

    run.__qualname__ = spec.name
    # arq counts every delivery as a try, crashes and shutdown cancellations included; the
    # runtime counts failed tries itself, so arq's count only stops a job that keeps dying.
    return func(
        run,
        name=spec.name,
        timeout=timeout,
        max_tries=spec.max_tries + max_redeliveries,
    )
