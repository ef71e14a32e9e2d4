"""The daily run's job type (body: jobs/prospecting/daily.py)."""

from typing import Any

from jobs.spec import JobBody, JobType


def _body() -> JobBody[Any, Any]:
    from jobs.models import DailyRunRequest
    from jobs.prospecting.daily import daily_failed, daily_prospect_queue

    return JobBody(daily_prospect_queue, DailyRunRequest, on_failure=daily_failed)


DAILY = JobType(
    name="daily_prospect_queue",
    load=_body,
    timeout_s=300.0,
    limit=1,
    services=("discovery",),
)
