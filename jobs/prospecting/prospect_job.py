"""The per-prospect job type (body: jobs/prospecting/prospect.py); the daily run fans it out."""

from typing import Any

from jobs.spec import JobBody, JobType


def _body() -> JobBody[Any, Any]:
    from jobs.models import ProspectJob
    from jobs.prospecting.prospect import process_prospect, prospect_failed, prospect_lost

    return JobBody(process_prospect, ProspectJob, on_failure=prospect_failed, on_lost=prospect_lost)


PROSPECT = JobType(
    name="process_prospect",
    load=_body,
    timeout_s=120.0,
    limit=20,
    services=("email_finder", "llm"),
)
