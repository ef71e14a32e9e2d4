"""The daily run's date: a real calendar date, and a day other than today only on purpose."""

from datetime import date

import pytest
from pydantic import ValidationError

from jobs.errors import InvalidPayload
from jobs.models import DailyRunRequest, resolve_run_id

TODAY = date(2026, 11, 22)


@pytest.mark.parametrize("bad", ["2026-13-45", "2026-02-30", "yesterday", "20261122", 20261122])
def test_run_date_must_be_a_real_iso_date(bad: object) -> None:
    with pytest.raises(ValidationError):
        DailyRunRequest.model_validate({"run_date": bad})


def test_run_date_parses_into_a_date() -> None:
    request = DailyRunRequest.model_validate({"run_date": "2026-11-20", "backfill": True})
    assert request.run_date == date(2026, 11, 20) and request.backfill
    assert request.model_dump(mode="json") == {"run_date": "2026-11-20", "backfill": True}


def test_no_date_or_todays_date_is_todays_run() -> None:
    assert resolve_run_id(DailyRunRequest(), TODAY) == "2026-11-22"
    assert resolve_run_id(DailyRunRequest(run_date=TODAY), TODAY) == "2026-11-22"


def test_another_day_needs_the_backfill_flag() -> None:
    with pytest.raises(InvalidPayload, match="backfill"):
        resolve_run_id(DailyRunRequest(run_date=date(2026, 11, 20)), TODAY)
    backfill = DailyRunRequest(run_date=date(2026, 11, 20), backfill=True)
    assert resolve_run_id(backfill, TODAY) == "2026-11-20"


def test_a_future_day_is_refused_even_as_a_backfill() -> None:
    future = DailyRunRequest(run_date=date(2099, 12, 31), backfill=True)
    with pytest.raises(InvalidPayload, match="future"):
        resolve_run_id(future, TODAY)
