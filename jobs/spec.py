"""How the domain declares a job type: one `JobType` beside its body, collected by the worker.

A declaration is light: its name, defaults and priority are plain values, and its body (with
the payload model and the failure hooks) is reached through `load`, which imports the body's
module only when a worker asks. So a command that lists job types (`stats`, `--help`) reads the
declarations without loading the HTTP, SMTP and HTML parsing the bodies stand on.
The worker applies its settings (`PW_JOBS__<NAME>__*`) to the defaults declared here.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from jobs.models import Priority

if TYPE_CHECKING:  # the dependencies stand on every client: a declaration names them only
    from jobs.deps import Deps, Progress

Payload = TypeVar("Payload", bound=BaseModel)
Result = TypeVar("Result", bound=BaseModel)


@dataclass(frozen=True)
class JobBody(Generic[Payload, Result]):
    """What runs: the body, the model its payload is validated with, and its failure hooks."""

    run: Callable[["Deps", Payload, "Progress"], Awaitable[Result]]
    payload: type[Payload]
    # Called once the job has failed for good with its payload (the daily run tallies it).
    on_failure: Callable[["Deps", Payload, str], Awaitable[None]] | None = None
    # Called with the job id when the job's record is gone (expired): no payload to hand over.
    on_lost: Callable[["Deps", str, str], Awaitable[None]] | None = None


@dataclass(frozen=True)
class JobType:
    """A job type as its module declares it; `load` imports and returns its body."""

    name: str
    load: Callable[[], JobBody[Any, Any]]
    timeout_s: float
    limit: int  # jobs of this type running at once across every replica
    # The class the project's enqueuers give it unless told otherwise (a plain arq client's
    # job has none: the maintenance level).
    priority: Priority = "maintenance"
    # The rate-limited services its body calls through the shared gate (jobs/clients/gate.py).
    services: tuple[str, ...] = ()
    max_tries: int | None = None  # None: the worker's retry setting
