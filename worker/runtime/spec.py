"""A job type as the runtime runs it: the domain's declaration (jobs/spec.py) with its body
loaded and the worker's settings applied (worker/registry.py builds these)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic

from jobs.models import Priority
from jobs.spec import JobBody, JobType, Payload, Result

if TYPE_CHECKING:  # the dependencies stand on every client: a spec names them only
    from jobs.deps import Deps, Progress


@dataclass(frozen=True)
class JobSpec(Generic[Payload, Result]):
    name: str
    body: Callable[["Deps", Payload, "Progress"], Awaitable[Result]]
    payload: type[Payload]
    timeout_s: float
    max_tries: int
    limit: int
    # Called once the job has failed for good with its payload (the daily run tallies it).
    on_failure: Callable[["Deps", Payload, str], Awaitable[None]] | None = None
    # Called with the job id when the job's record is gone (expired): no payload to hand over.
    on_lost: Callable[["Deps", str, str], Awaitable[None]] | None = None
    # The class the project's enqueuers give it unless told otherwise (a plain arq client's
    # job has none: the maintenance level).
    priority: Priority = "maintenance"

    @classmethod
    def of(cls, declared: JobType, *, max_tries: int) -> "JobSpec[Any, Any]":
        """The declared type (its settings applied) with its body loaded, imported now;
        `max_tries` unless the type declares its own."""
        body: JobBody[Any, Any] = declared.load()
        return cls(
            name=declared.name,
            body=body.run,
            payload=body.payload,
            timeout_s=declared.timeout_s,
            max_tries=declared.max_tries if declared.max_tries is not None else max_tries,
            limit=declared.limit,
            on_failure=body.on_failure,
            on_lost=body.on_lost,
            priority=declared.priority,
        )
