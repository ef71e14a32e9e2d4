"""arq's contract, named in one place (arq 0.28): the keys and the job record that every arq
client and worker share, the cron job ids, the delivery counter and the log lines arq writes.
The engine reads and writes these directly only for bulk fan-out, dead letters, replay, deferral
and catch-up; everything else goes through arq's own API. Nothing outside the engine's modules
spells any of it: they call the names here. tests/unit/test_arq_canary.py pins each one against
the installed arq, and `check_arq_version` refuses to start on any other arq than the one pinned.

A job is `arq:job:<id>` (the record below, serialized with orjson) plus `<id>` in the queue's
sorted set scored by the time it is due (ms). While a worker runs it, `arq:in-progress:<id>`
exists; `arq:retry:<id>` counts deliveries; `arq:result:<id>` holds the outcome once finished.
A score is due when it is at most arq's clock, `timestamp_ms()`: the time in ms, *rounded*.
"""

from datetime import datetime
from typing import Any

import arq.version
import orjson
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.utils import timestamp_ms, to_unix_ms
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

# The arq this seam is written against; pyproject.toml pins the same (the canary checks both).
ARQ_VERSION = "0.28.0"

JOB_KEY_PREFIX: str = job_key_prefix
RESULT_KEY_PREFIX: str = result_key_prefix
IN_PROGRESS_KEY_PREFIX: str = in_progress_key_prefix
RETRY_KEY_PREFIX: str = retry_key_prefix
ABORT_SET: str = abort_jobs_ss
# How long arq keeps a job's delivery count (`arq:retry:<id>`) after each delivery, in s.
RETRY_KEY_LIFE_S = 88_400
# arq names a cron job `cron:<function>` by default; its record's function is that name.
CRON_PREFIX = "cron:"

# arq's log lines that worker/observability/log_setup.py filters, as arq formats them (matched
# exactly), and every logger arq writes to.
LOG_JOB_START = "%6.2fs → %s(%s)%s"  # carries the job's arguments
LOG_JOB_END = "%6.2fs ← %s ● %s"  # carries the job's result
LOG_RETRY = "%6.2fs ↻ %s retrying job in %0.2fs"
LOG_FAILED = "%6.2fs ! %s failed, %s: %s"
LOG_UNDESERIALIZABLE = "deserializing job %s failed"
LOGGERS = ("arq.worker", "arq.jobs", "arq.connections", "arq.utils")


class UnsupportedArq(RuntimeError):
    """The installed arq is not the one the engine's overrides are written against."""


def check_arq_version(installed: str | None = None) -> None:
    """Refuse to start on another arq: a renamed internal would silently stop being called."""
    installed = arq.version.VERSION if installed is None else installed
    if installed != ARQ_VERSION:
        raise UnsupportedArq(
            f"arq {installed} is installed, but the engine supports arq {ARQ_VERSION} only "
            f"(install arq=={ARQ_VERSION})"
        )


def cron_name(function: str) -> str:
    """The name arq gives a cron job of `function`, and the function its job records carry."""
    return CRON_PREFIX + function


def job_type(function: str) -> str:
    """The job type a record's function names: a cron run's record names its cron job."""
    return function.removeprefix(CRON_PREFIX)


def is_cron_run(job_id: str) -> bool:
    """A unique cron job's run has the id `cron_job_id` gives it."""
    return job_id.startswith(CRON_PREFIX)


def cron_job_id(name: str, tick: datetime) -> str:
    """The id arq gives a unique cron job's run at `tick`: one run per tick across replicas."""
    return f"{name}:{to_unix_ms(tick)}"


async def take_back_delivery(redis: Redis, job_id: str) -> None:
    """arq counts each delivery of a job as a try before running it; undo one count."""
    await redis.decr(RETRY_KEY_PREFIX + job_id)


def due_now_ms() -> int:
    """Now, as arq scores and compares: a job arq scored a moment ago is due by it, where a
    truncated `int(time.time() * 1000)` can still be a millisecond behind its score."""
    return timestamp_ms()


class ArqJob(BaseModel):
    """The job record as arq writes it: try, function, args, kwargs, enqueue time."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    job_try: int | None = Field(alias="t")  # present, even when null
    function: str = Field(alias="f", min_length=1)
    args: list[Any] = Field(alias="a")
    kwargs: dict[str, Any] = Field(alias="k")
    enqueue_ms: int = Field(alias="et")


class MalformedJob(ValueError):
    """Bytes that are not an arq job record: a poison message."""


def encode_job(function: str, payload: dict[str, Any] | None, enqueue_ms: int) -> bytes:
    """A job record that calls `function` with one JSON object (or nothing)."""
    record: dict[str, Any] = {
        "t": None,
        "f": function,
        "a": [payload] if payload else [],
        "k": {},
        "et": enqueue_ms,
    }
    return orjson.dumps(record)


def decode_job(raw: bytes) -> ArqJob:
    try:
        return ArqJob.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError, TypeError) as exc:
        raise MalformedJob(f"not an arq job record ({type(exc).__name__})") from None
