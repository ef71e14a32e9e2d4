"""arq's storage contract, named in one place (arq 0.28): the keys and the job record that every
arq client and worker share. The engine reads and writes these directly only for bulk fan-out,
dead letters and replay; everything else goes through arq's own API.

A job is `arq:job:<id>` (the record below, serialized with orjson) plus `<id>` in the queue's
sorted set scored by the time it is due (ms). While a worker runs it, `arq:in-progress:<id>`
exists; `arq:retry:<id>` counts deliveries; `arq:result:<id>` holds the outcome once finished.
A score is due when it is at most arq's clock, `timestamp_ms()`: the time in ms, *rounded*.
"""

from typing import Any

import orjson
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.utils import timestamp_ms
from pydantic import BaseModel, ConfigDict, Field, ValidationError

JOB_KEY_PREFIX: str = job_key_prefix
RESULT_KEY_PREFIX: str = result_key_prefix
IN_PROGRESS_KEY_PREFIX: str = in_progress_key_prefix
RETRY_KEY_PREFIX: str = retry_key_prefix
ABORT_SET: str = abort_jobs_ss


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
