"""Discovery and email-finder clients on mocked transports, and the HTTP error mapping."""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from jobs.clients.discovery import CompanySearchClient, domain_of, icp_query
from jobs.clients.email_finder import EmailFinderClient
from jobs.clients.http import parse_retry_after
from jobs.errors import PermanentError, RateLimited, TransientError, UnreadableResponse
from tests.support.paging import discover_all


def record(n: int, **extra: object) -> dict[str, Any]:
    return {
        "id": f"c{n}",
        "name": f"Company {n}",
        "website": f"https://www.c{n}.example/about",
        "industry": "computer software",
        "employee_count": 40,
        "location": {"country": "united states", "region": "ohio"},
        "tags": ["hiring"],
        "unknown_field": True,
        **extra,
    }


def search_client(handler: Callable[[httpx.Request], httpx.Response]) -> CompanySearchClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return CompanySearchClient(http, base_url="https://pdl.test/", api_key="pdl-secret", timeout=3)


def finder(handler: Callable[[httpx.Request], httpx.Response]) -> EmailFinderClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return EmailFinderClient(
        http, base_url="https://hunter.test", api_key="hunter-secret", timeout=3
    )


async def test_discovery_pages_with_scroll_token_up_to_the_limit() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(
            {"body": body, "key": request.headers.get("X-Api-Key"), "url": str(request.url)}
        )
        start = int(body.get("scroll_token") or 0)
        data = [record(n) for n in range(start, start + body["size"])]
        return httpx.Response(
            200,
            json={
                "status": 200,
                "data": data,
                "scroll_token": str(start + body["size"]),
                "total": 999,
            },
        )

    companies = await discover_all(search_client(handler), {"bool": {"must": []}}, limit=250)
    assert len(companies) == 250
    assert [s["body"]["size"] for s in seen] == [100, 100, 50]
    assert [s["body"].get("scroll_token") for s in seen] == [None, "100", "200"]
    assert {s["key"] for s in seen} == {"pdl-secret"}
    assert seen[0]["url"] == "https://pdl.test/v5/company/search"
    first = companies[0]
    assert (first.domain, first.country, first.tags) == ("c0.example", "united states", ("hiring",))


async def test_discovery_stops_at_the_last_page_and_drops_records_without_a_site() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        data = [record(1), record(2, website=None), record(3, website="localhost")]
        return httpx.Response(200, json={"status": 200, "data": data, "scroll_token": None})

    companies = await discover_all(search_client(handler), {}, limit=100)
    assert [c.id for c in companies] == ["c1"]


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (429, {"Retry-After": "7"}, RateLimited, 7.0),
        (503, {}, TransientError, None),
        (401, {}, PermanentError, None),
        (404, {}, PermanentError, None),
    ],
)
async def test_status_codes_map_to_the_error_vocabulary(
    status: int, headers: dict[str, str], error: type, retry_after: float | None
) -> None:
    client = search_client(lambda request: httpx.Response(status, headers=headers, json={}))
    with pytest.raises(error) as caught:
        await client.search_page({}, 10)
    assert type(caught.value) is error
    assert getattr(caught.value, "retry_after", None) == retry_after
    assert "pdl-secret" not in str(caught.value)


async def test_timeouts_and_cut_bodies_are_transient_and_wrong_bodies_permanent() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(TransientError, match="timed out"):
        await search_client(slow).search_page({}, 10)
    with pytest.raises(UnreadableResponse, match="unreadable response"):
        await search_client(lambda r: httpx.Response(200, content=b"{not json")).search_page({}, 1)
    with pytest.raises(PermanentError, match=r"malformed response .data.0.id"):
        await search_client(
            lambda r: httpx.Response(200, json={"data": [{"name": "no id"}]})
        ).search_page({}, 1)


async def test_email_finder_prefers_a_named_person_then_confidence() -> None:
    asked: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        return httpx.Response(
            200,
            json={
                "data": {
                    "domain": "acme.example",
                    "emails": [
                        {"value": "info@acme.example", "type": "generic", "confidence": 99},
                        {
                            "value": "Ann.Lee@acme.example",
                            "type": "personal",
                            "confidence": 80,
                            "first_name": "Ann",
                            "last_name": "Lee",
                            "position": "CTO",
                        },
                        {"value": "bo@acme.example", "type": "personal", "confidence": 60},
                    ],
                },
                "meta": {},
            },
        )

    contact = await finder(handler).best_contact("acme.example")
    assert contact is not None
    assert (contact.email, contact.first_name, contact.position, contact.confidence) == (
        "ann.lee@acme.example",
        "Ann",
        "CTO",
        80,
    )
    assert asked[0].path == "/v2/domain-search"
    assert asked[0].params["domain"] == "acme.example"
    assert asked[0].params["api_key"] == "hunter-secret"


async def test_email_finder_none_found_and_key_kept_out_of_errors() -> None:
    empty = finder(lambda r: httpx.Response(200, json={"data": {"emails": []}}))
    assert await empty.best_contact("quiet.example") is None
    refused = finder(lambda r: httpx.Response(401, json={"errors": []}))
    with pytest.raises(PermanentError) as caught:
        await refused.best_contact("acme.example")
    assert "hunter-secret" not in str(caught.value)
    assert str(caught.value) == "email_finder: HTTP 401 from GET /v2/domain-search"


def test_icp_query_and_domains() -> None:
    query = icp_query(
        industries=["b", "a"], countries=["canada"], min_employees=10, max_employees=None
    )
    assert query == {
        "bool": {
            "must": [
                {"terms": {"industry": ["a", "b"]}},
                {"terms": {"location.country": ["canada"]}},
                {"range": {"employee_count": {"gte": 10}}},
            ]
        }
    }
    assert domain_of("HTTPS://WWW.Acme.Example./x") == "acme.example"
    assert domain_of("acme.example") == "acme.example"
    assert domain_of("") is None


def test_retry_after_seconds_or_http_date() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Sun, 22 Nov 2026 12:00:30 GMT", now=now) == 30
    assert parse_retry_after("Sun, 22 Nov 2026 11:00:00 GMT", now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
