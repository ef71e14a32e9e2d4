"""Pure parts of the engine: backoff, payload parsing, the JSON serializer."""

from datetime import date
from typing import Any

import orjson
import pytest

from jobs.errors import InvalidPayload
from jobs.models import DailyRunRequest
from worker.engine.serializer import JobFailed, deserialize, serialize
from worker.runtime.failures import RetryPolicy
from worker.runtime.runtime import parse_payload


def test_backoff_grows_exponentially_within_its_jitter_band() -> None:
    low = RetryPolicy(base_delay_s=2, max_delay_s=60, rand=lambda: 0.0)
    high = RetryPolicy(base_delay_s=2, max_delay_s=60, rand=lambda: 1.0)
    assert [low.delay(n, None) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert [high.delay(n, None) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert high.delay(10, None) == 60  # capped


def test_backoff_never_retries_before_retry_after() -> None:
    policy = RetryPolicy(base_delay_s=1, max_delay_s=60, rand=lambda: 0.5)
    assert policy.delay(1, retry_after=30) == 30
    assert policy.delay(1, retry_after=0.1) == 0.75


def test_payload_from_dict_kwargs_or_nothing() -> None:
    assert parse_payload(DailyRunRequest, (), {}) == DailyRunRequest()
    assert parse_payload(DailyRunRequest, ({"run_date": "2026-11-22"},), {}).run_date == date(
        2026, 11, 22
    )
    assert parse_payload(DailyRunRequest, (), {"run_date": "2026-11-23"}).run_date == date(
        2026, 11, 23
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "says"),
    [
        (("2026-11-22",), {}, "expected one JSON object argument"),
        (({}, {}), {}, "got 2 argument(s)"),
        (({"run_date": "yesterday"},), {}, "run_date: Value error, must be a date as YYYY-MM-DD"),
        (({"run_date": "2026-13-45"},), {}, "run_date: Input should be a valid date"),
        ((), {"surprise": 1}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_payloads_are_permanent(
    args: tuple[Any, ...], kwargs: dict[str, Any], says: str
) -> None:
    with pytest.raises(InvalidPayload, match=None) as caught:
        parse_payload(DailyRunRequest, args, kwargs)
    assert says in str(caught.value)


def test_serializer_is_plain_json_and_carries_failures() -> None:
    job = {"t": 1, "f": "daily_prospect_queue", "a": [], "k": {}, "et": 1}
    assert orjson.loads(serialize(job)) == job  # what a plain arq client with orjson reads
    failed = deserialize(serialize({**job, "s": False, "r": ValueError("boom")}))
    assert isinstance(failed["r"], JobFailed)
    assert str(failed["r"]) == "ValueError: boom"
    # A successful result that happens to look like an error stays data.
    ok = deserialize(serialize({**job, "s": True, "r": {"error": {"type": "x", "message": "y"}}}))
    assert ok["r"] == {"error": {"type": "x", "message": "y"}}


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe not json",
        b"[1, 2]",
        b'{"f": "daily_prospect_queue", "a": [], "k": [1], "et": 1}',
        b'{"f": "daily_prospect_queue", "a": {}, "k": {}, "et": 1}',
        b'{"envelope": "someone else\'s"}',
    ],
)
def test_the_deserializer_refuses_anything_but_an_arq_envelope(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"."):
        deserialize(raw)
