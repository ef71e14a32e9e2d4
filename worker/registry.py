"""The job types this worker runs, collected from their declarations, and the settings that
override them.

Each job type is declared once, beside its body (a `jobs.spec.JobType`); this module only lists
the declarations and applies `PW_JOBS__<NAME>__LIMIT` and `PW_JOBS__<NAME>__TIMEOUT_S`
(settings.JobSettings). A setting that names no job type stops the start with one line naming
it. The declarations are light: `job_types` reads names, limits and priorities without loading
a body; `job_specs` loads the bodies (a worker, or a client that enqueues).
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

from jobs.maintenance_job import CLEANUP
from jobs.outreach.reply_job import REPLY
from jobs.outreach.send_job import SEND
from jobs.prospecting.daily_job import DAILY
from jobs.prospecting.prospect_job import PROSPECT
from jobs.spec import JobType
from settings import ENV_PREFIX, NESTED, JobSettings, Settings, SettingsError
from worker.runtime.spec import JobSpec

# Every job type the worker runs: adding one is a declaration beside its body and a line here.
JOB_TYPES: tuple[JobType, ...] = (DAILY, PROSPECT, CLEANUP, SEND, REPLY)

# The names the wiring and the CLI refer to (the crons, the send and reply commands).
DAILY_JOB, PROSPECT_JOB, CLEANUP_JOB = DAILY.name, PROSPECT.name, CLEANUP.name
SEND_JOB, REPLY_JOB = SEND.name, REPLY.name


def job_env_name(job: str, field: str | None = None) -> str:
    """The variable a job type's setting is read from: `PW_JOBS__<NAME>[__<FIELD>]`."""
    parts = ["jobs", job] + ([field] if field else [])
    return ENV_PREFIX + NESTED.join(parts).upper()


def _configured(declared: JobType, chosen: JobSettings | None) -> JobType:
    if chosen is None:
        return declared
    return dataclasses.replace(
        declared,
        limit=declared.limit if chosen.limit is None else chosen.limit,
        timeout_s=declared.timeout_s if chosen.timeout_s is None else chosen.timeout_s,
    )


def job_types(settings: Settings, declared: Sequence[JobType] = JOB_TYPES) -> dict[str, JobType]:
    """The job types with their settings applied, no body loaded; SettingsError (one line) for
    a setting that names no job type or does not fit the others."""
    by_name = {job.name: job for job in declared}
    if len(by_name) != len(declared):
        raise ValueError(f"two job types share a name: {sorted(j.name for j in declared)}")
    unknown = sorted(settings.jobs.keys() - by_name.keys())
    if unknown:
        raise SettingsError(
            f"invalid settings: {job_env_name(unknown[0])}: no job type {unknown[0]!r} "
            f"(job types: {', '.join(sorted(by_name))})"
        )
    types = {name: _configured(job, settings.jobs.get(name)) for name, job in by_name.items()}
    if SEND_JOB in types:
        send_timeout_s = types[SEND_JOB].timeout_s
        # A live worker's send must never look lapsed: the lease covers the whole try.
        if settings.outreach.send_lease_s <= send_timeout_s:
            raise SettingsError(
                "invalid settings: PW_OUTREACH__SEND_LEASE_S: must be longer than the "
                f"{SEND_JOB} timeout ({job_env_name(SEND_JOB, 'timeout_s')}, "
                f"{send_timeout_s:g} s)"
            )
    return types


def job_specs(
    settings: Settings, declared: Sequence[JobType] = JOB_TYPES
) -> dict[str, JobSpec[Any, Any]]:
    """The job types as the runtime runs them: `job_types` with every body loaded."""
    return {
        name: JobSpec.of(job, max_tries=settings.retry.max_tries)
        for name, job in job_types(settings, declared).items()
    }
