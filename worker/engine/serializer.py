"""Job serialization: JSON via orjson, never pickle.

A plain arq client talks to this worker with `job_serializer=orjson.dumps,
job_deserializer=orjson.loads`. The worker adds one thing on top: a failed job's result is an
exception, which JSON cannot hold, so it is written as `{"error": {"type", "message"}}` and
read back as `JobFailed`, letting arq's `Job.result()` raise it as usual.
"""

from typing import Any

import orjson


class JobFailed(Exception):
    """A job that failed for good, as read back from its stored result."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


def _encode(value: Any) -> Any:
    if isinstance(value, BaseException):
        if isinstance(value, JobFailed):
            return {"error": {"type": value.error_type, "message": value.message}}
        return {"error": {"type": type(value).__name__, "message": str(value)}}
    raise TypeError(f"cannot serialize {type(value).__name__}")


def serialize(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, default=_encode)


def deserialize(raw: bytes) -> dict[str, Any]:
    """A job or result record; anything else raises, and arq turns that into a poison job."""
    data = orjson.loads(raw)
    if not (
        isinstance(data, dict)
        and isinstance(data.get("f"), str)
        and isinstance(data.get("a"), list)
        and isinstance(data.get("k"), dict)
        and "t" in data
        and isinstance(data.get("et"), int)
    ):
        # arq would call the function with whatever `a` and `k` hold and fail it with a
        # traceback; refusing the envelope here makes it a poison job with a dead letter.
        raise ValueError(
            "not an arq job envelope: needs t, f (str), a (list), k (object), et (int)"
        )
    result = data.get("r")
    # Only a failed result ('s' false) can carry an encoded exception.
    if data.get("s") is False and isinstance(result, dict) and set(result) == {"error"}:
        error = result["error"]
        data["r"] = JobFailed(str(error.get("type")), str(error.get("message")))
    return data
