"""A job type declared by a module alone, the way a new one is added: its body, payload model,
failure hook and spec side by side (tests/integration/test_job_types.py runs it)."""

from typing import Any

from jobs.deps import Deps, Progress
from jobs.errors import PermanentError
from jobs.models import Frozen
from jobs.prospecting.store import now_ms
from jobs.spec import JobBody, JobType


class BounceCheck(Frozen):
    address: str
    bounced: bool = False


class BounceChecked(Frozen):
    address: str
    deliverable: bool


async def check_bounce(deps: Deps, request: BounceCheck, progress: Progress) -> BounceChecked:
    await progress.update("checking", done=0, total=1)
    if request.bounced:
        raise PermanentError(f"{request.address}: mailbox gone")
    await progress.update("checked", done=1, total=1)
    return BounceChecked(address=request.address, deliverable=True)


async def bounce_failed(deps: Deps, request: BounceCheck, reason: str) -> None:
    """A failed check suppresses the address, with the failure as the reason."""
    await deps.outreach.suppressions.add(request.address, reason=reason, now_ms=now_ms())


def _body() -> JobBody[Any, Any]:
    return JobBody(check_bounce, BounceCheck, on_failure=bounce_failed)


BOUNCE = JobType(
    name="check_bounce",
    load=_body,
    timeout_s=10.0,
    limit=2,
    priority="hot",
    max_tries=1,
)
