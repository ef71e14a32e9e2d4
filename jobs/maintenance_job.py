"""The hourly retention cleanup's job type (body: jobs/maintenance.py)."""

from typing import Any

from jobs.spec import JobBody, JobType


def _body() -> JobBody[Any, Any]:
    from jobs.maintenance import cleanup
    from jobs.models import CleanupRequest

    return JobBody(cleanup, CleanupRequest)


CLEANUP = JobType(name="cleanup", load=_body, timeout_s=120.0, limit=1)
