"""The job types this worker runs, with their limits, timeouts and failure hooks from settings."""

from typing import Any

from jobs.maintenance import cleanup
from jobs.models import CleanupRequest, DailyRunRequest, ProspectJob
from jobs.outreach.replies import ReplyRequest, process_reply
from jobs.outreach.send import SendRequest, send_outreach
from jobs.prospecting.daily import PROSPECT_JOB, daily_failed, daily_prospect_queue
from jobs.prospecting.prospect import process_prospect, prospect_failed, prospect_lost
from settings import Settings
from worker.runtime.runtime import JobSpec

DAILY_JOB = "daily_prospect_queue"
CLEANUP_JOB = "cleanup"
SEND_JOB = "send_outreach"
REPLY_JOB = "process_reply"


def job_specs(settings: Settings) -> dict[str, JobSpec[Any, Any]]:
    limits, timeouts, tries = settings.job_limits, settings.job_timeouts, settings.retry.max_tries
    specs: list[JobSpec[Any, Any]] = [
        JobSpec(
            name=DAILY_JOB,
            body=daily_prospect_queue,
            payload=DailyRunRequest,
            timeout_s=timeouts.daily_prospect_queue,
            max_tries=tries,
            limit=limits.daily_prospect_queue,
            on_failure=daily_failed,
        ),
        JobSpec(
            name=PROSPECT_JOB,
            body=process_prospect,
            payload=ProspectJob,
            timeout_s=timeouts.process_prospect,
            max_tries=tries,
            limit=limits.process_prospect,
            on_failure=prospect_failed,
            on_lost=prospect_lost,
        ),
        JobSpec(
            name=CLEANUP_JOB,
            body=cleanup,
            payload=CleanupRequest,
            timeout_s=120.0,
            max_tries=tries,
            limit=1,
        ),
        JobSpec(
            name=SEND_JOB,
            body=send_outreach,
            payload=SendRequest,
            timeout_s=timeouts.send_outreach,
            max_tries=tries,
            limit=limits.send_outreach,
            priority="hot",  # a person approved it: ahead of the day's prospects
        ),
        JobSpec(
            name=REPLY_JOB,
            body=process_reply,
            payload=ReplyRequest,
            timeout_s=timeouts.process_reply,
            max_tries=tries,
            limit=limits.process_reply,
            priority="reply",  # first of all: an unsubscribe must land before the next send
        ),
    ]
    return {spec.name: spec for spec in specs}
