"""The job types this worker runs, with their defaults, and the settings that override them.

A job type's limit and timeout are declared here with it; `PW_JOBS__<NAME>__LIMIT` and
`PW_JOBS__<NAME>__TIMEOUT_S` (settings.JobSettings) override them, and a name that is not a
job type here stops the start with one line naming it.
"""

import dataclasses
from typing import Any

from jobs.maintenance import cleanup
from jobs.models import CleanupRequest, DailyRunRequest, ProspectJob
from jobs.outreach.replies import ReplyRequest, process_reply
from jobs.outreach.send import SendRequest, send_failed, send_outreach
from jobs.prospecting.daily import PROSPECT_JOB, daily_failed, daily_prospect_queue
from jobs.prospecting.prospect import process_prospect, prospect_failed, prospect_lost
from settings import ENV_PREFIX, NESTED, JobSettings, Settings, SettingsError
from worker.runtime.runtime import JobSpec

DAILY_JOB = "daily_prospect_queue"
CLEANUP_JOB = "cleanup"
SEND_JOB = "send_outreach"
REPLY_JOB = "process_reply"


def declared_specs(max_tries: int) -> list[JobSpec[Any, Any]]:
    """Every job type with its own defaults, before settings."""
    return [
        JobSpec(
            name=DAILY_JOB,
            body=daily_prospect_queue,
            payload=DailyRunRequest,
            timeout_s=300.0,
            max_tries=max_tries,
            limit=1,
            on_failure=daily_failed,
        ),
        JobSpec(
            name=PROSPECT_JOB,
            body=process_prospect,
            payload=ProspectJob,
            timeout_s=120.0,
            max_tries=max_tries,
            limit=20,
            on_failure=prospect_failed,
            on_lost=prospect_lost,
        ),
        JobSpec(
            name=CLEANUP_JOB,
            body=cleanup,
            payload=CleanupRequest,
            timeout_s=120.0,
            max_tries=max_tries,
            limit=1,
        ),
        JobSpec(
            name=SEND_JOB,
            body=send_outreach,
            payload=SendRequest,
            timeout_s=120.0,
            max_tries=max_tries,
            limit=5,
            on_failure=send_failed,
            priority="hot",  # a person approved it: ahead of the day's prospects
        ),
        JobSpec(
            name=REPLY_JOB,
            body=process_reply,
            payload=ReplyRequest,
            timeout_s=60.0,
            max_tries=max_tries,
            limit=10,
            priority="reply",  # first of all: an unsubscribe must land before the next send
        ),
    ]


def job_env_name(job: str, field: str | None = None) -> str:
    """The variable a job type's setting is read from: `PW_JOBS__<NAME>[__<FIELD>]`."""
    parts = ["jobs", job] + ([field] if field else [])
    return ENV_PREFIX + NESTED.join(parts).upper()


def _configured(spec: JobSpec[Any, Any], chosen: JobSettings | None) -> JobSpec[Any, Any]:
    if chosen is None:
        return spec
    return dataclasses.replace(
        spec,
        limit=spec.limit if chosen.limit is None else chosen.limit,
        timeout_s=spec.timeout_s if chosen.timeout_s is None else chosen.timeout_s,
    )


def job_specs(settings: Settings) -> dict[str, JobSpec[Any, Any]]:
    """The job types with their settings applied; SettingsError (one line) for a setting that
    names no job type or does not fit the others."""
    declared = {spec.name: spec for spec in declared_specs(settings.retry.max_tries)}
    unknown = sorted(settings.jobs.keys() - declared.keys())
    if unknown:
        raise SettingsError(
            f"invalid settings: {job_env_name(unknown[0])}: no job type {unknown[0]!r} "
            f"(job types: {', '.join(sorted(declared))})"
        )
    specs = {name: _configured(spec, settings.jobs.get(name)) for name, spec in declared.items()}
    send_timeout_s = specs[SEND_JOB].timeout_s
    # A live worker's send must never look lapsed: the lease covers the whole try.
    if settings.outreach.send_lease_s <= send_timeout_s:
        raise SettingsError(
            "invalid settings: PW_OUTREACH__SEND_LEASE_S: must be longer than the "
            f"{SEND_JOB} timeout ({job_env_name(SEND_JOB, 'timeout_s')}, {send_timeout_s:g} s)"
        )
    return specs
