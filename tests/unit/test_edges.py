"""Edges the rest of the suite left dark (the coverage report showed them): bad CLI input, an
unreachable Redis, unreadable header and URL values, unserializable results, empty ICP names."""

from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

import worker
from jobs.clients.discovery import domain_of
from jobs.clients.http import parse_retry_after
from jobs.models import Company
from jobs.prospecting.enrich import read_website
from jobs.prospecting.icp import IcpProfile
from jobs.web.fetch import WebsiteFetcher
from worker.cli import EXIT_USAGE, main
from worker.engine.serializer import serialize
from worker.local.embedded import free_port


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ("{not json", "Error: Invalid value for --payload: not valid JSON"),
        ("[1, 2]", "Error: Invalid value for --payload: must be a JSON object"),
    ],
)
def test_the_cli_refuses_a_bad_payload_before_touching_redis(
    payload: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["enqueue", "daily_prospect_queue", "--payload", payload]) == EXIT_USAGE
    assert says in capsys.readouterr().err


def test_the_cli_says_when_redis_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A loopback port nobody listens on: the connection is refused at once.
    url = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("REDIS_URL", url)
    assert main(["status", "some-job"]) == EXIT_USAGE
    assert f"Error: cannot reach Redis at {url}: " in capsys.readouterr().err


def test_retry_after_as_a_date_without_a_zone_is_read_as_utc() -> None:
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 22 Nov 2026 12:00:30", now=now) == 30.0
    assert parse_retry_after("next tuesday", now=now) is None


def test_a_website_that_is_not_a_url_has_no_domain() -> None:
    assert domain_of("http://[not-an-ip") is None
    assert domain_of("http://acme\x00.example") is None


async def test_a_website_that_is_down_is_recorded_not_raised() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(503))
    async with httpx.AsyncClient(transport=transport) as http:
        company = Company(id="c1", name="Acme", domain="acme.example")
        site = await read_website(WebsiteFetcher(http), company)
    assert site == (None, "TransientError: acme.example: HTTP 503")


def test_the_engine_package_has_only_the_worker_settings_attribute() -> None:
    with pytest.raises(AttributeError, match="module 'worker' has no attribute 'Settings'"):
        _ = worker.Settings


def test_only_exceptions_are_encoded_beyond_json() -> None:
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        serialize({"r": object()})


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"signals": {"  ": 10}}, "signal names must not be empty"),
        ({"regions": ["ontario", ""]}, "names must not be empty"),
    ],
)
def test_empty_icp_names_are_refused(fields: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        IcpProfile.model_validate(fields)
