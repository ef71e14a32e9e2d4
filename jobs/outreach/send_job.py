"""The approved email's send job type (body: jobs/outreach/send.py)."""

from typing import Any

from jobs.spec import JobBody, JobType


def _body() -> JobBody[Any, Any]:
    from jobs.outreach.send import SendRequest, send_failed, send_outreach

    return JobBody(send_outreach, SendRequest, on_failure=send_failed)


SEND = JobType(
    name="send_outreach",
    load=_body,
    timeout_s=120.0,
    limit=5,
    priority="hot",  # a person approved it: ahead of the day's prospects
    services=("smtp",),
)
