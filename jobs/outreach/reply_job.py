"""The inbound reply's job type (body: jobs/outreach/replies.py)."""

from typing import Any

from jobs.spec import JobBody, JobType


def _body() -> JobBody[Any, Any]:
    from jobs.outreach.replies import ReplyRequest, process_reply

    return JobBody(process_reply, ReplyRequest)


REPLY = JobType(
    name="process_reply",
    load=_body,
    timeout_s=60.0,
    limit=10,
    priority="reply",  # first of all: an unsubscribe must land before the next send
    services=("llm",),
)
