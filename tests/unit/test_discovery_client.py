"""The company search client on mocked transports: paging, normalising, error mapping."""

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jobs.clients.discovery import MAX_PAGES, CompanySearchClient, domain_of, icp_query
from jobs.errors import PermanentError, RateLimited, TransientError, UnreadableResponse
from tests.support.paging import discover_all

Handler = Callable[[httpx.Request], httpx.Response]


def record(n: int, **extra: object) -> dict[str, Any]:
    return {
        "id": f"c{n}",
        "name": f"company {n}",
        "website": f"c{n}.example",
        "industry": "computer software",
        "employee_count": 40,
        "size": "11-50",
        "location": {"country": "united states", "region": "ohio", "locality": "columbus"},
        "founded": 2015,
        "tags": ["hiring"],
        "linkedin_url": f"linkedin.com/company/c{n}",  # a field the client does not model
        **extra,
    }


def page(data: list[dict[str, Any]], token: str | None, total: int = 999) -> httpx.Response:
    return httpx.Response(
        200, json={"status": 200, "data": data, "scroll_token": token, "total": total}
    )


def client(handler: Handler, api_key: str | None = "pdl-secret") -> CompanySearchClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return CompanySearchClient(http, base_url="https://pdl.test/", api_key=api_key, timeout=3)


async def test_pages_with_the_scroll_token_up_to_the_limit() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        start = int(body.get("scroll_token") or 0)
        return page([record(n) for n in range(start, start + body["size"])], str(start + 100))

    companies = await discover_all(client(handler), {"bool": {"must": []}}, limit=250)

    assert [c.id for c in companies] == [f"c{n}" for n in range(250)]
    bodies = [json.loads(r.content) for r in seen]
    # PDL bills per record: the last page asks only for what is still wanted.
    assert [b["size"] for b in bodies] == [100, 100, 50]
    assert [b.get("scroll_token") for b in bodies] == [None, "100", "200"]
    assert all(b["query"] == {"bool": {"must": []}} for b in bodies)
    assert {r.method for r in seen} == {"POST"}
    assert {str(r.url) for r in seen} == {"https://pdl.test/v5/company/search"}
    assert {r.headers.get("X-Api-Key") for r in seen} == {"pdl-secret"}


async def test_no_key_header_without_a_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return page([], None)

    assert await discover_all(client(handler, api_key=None), {}, limit=5) == []
    assert "X-Api-Key" not in seen[0].headers


async def test_records_are_normalised_into_companies() -> None:
    raw = record(
        1,
        name="northwind analytics",
        display_name="Northwind Analytics",
        website="https://www.NorthWind-Analytics.example/about",
    )
    [company] = await discover_all(client(lambda r: page([raw], None)), {}, limit=10)
    assert company.model_dump() == {
        "id": "c1",
        "name": "Northwind Analytics",
        "domain": "northwind-analytics.example",
        "website": "https://www.NorthWind-Analytics.example/about",
        "industry": "computer software",
        "employee_count": 40,
        "country": "united states",
        "region": "ohio",
        "founded": 2015,
        "tags": ("hiring",),
    }


async def test_drops_records_without_a_domain_and_duplicates() -> None:
    data = [
        record(1),
        record(2, website=None),
        record(3, website="localhost"),
        record(4, website="10.0.0.7"),
        record(5, website="http://[::1]:8080/"),
        record(6, website="http://exa mple.example"),
        record(1, website="other.example"),  # same id again
        record(7, website="https://c1.example/"),  # same domain as c1
        record(8, location=None, tags=None, name=None),
    ]
    companies = await discover_all(client(lambda r: page(data, None)), {}, limit=100)
    assert [(c.id, c.name) for c in companies] == [("c1", "company 1"), ("c8", "c8.example")]


@pytest.mark.parametrize(
    ("answer", "calls"),
    [
        (lambda n: page([], "more"), 1),  # an empty page ends it even with a token
        (lambda n: page([record(n)], None), 1),  # no token: the last page
        (lambda n: page([record(n)], "same"), 2),  # the same token again would loop forever
    ],
)
async def test_stops_at_the_end(answer: Callable[[int], httpx.Response], calls: int) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(len(seen))

    await discover_all(client(handler), {}, limit=1000)
    assert len(seen) == calls


async def test_the_number_of_pages_is_capped() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return page([record(len(seen))], f"t{len(seen)}")

    companies = await discover_all(client(handler), {}, limit=10_000, page_size=1)
    assert len(seen) == len(companies) == MAX_PAGES


async def test_page_sizes_stay_within_the_providers_bounds() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sizes.append(json.loads(request.content)["size"])
        return page([], None)

    search = client(handler)
    await discover_all(search, {}, limit=1000, page_size=500)
    await search.search_page({}, 0)
    assert await discover_all(search, {}, limit=0) == []
    assert sizes == [100, 1]


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (429, {"Retry-After": "7"}, RateLimited, 7.0),
        (429, {}, RateLimited, None),
        (503, {}, TransientError, None),
        (502, {"Retry-After": "3"}, TransientError, 3.0),
        (401, {}, PermanentError, None),
        (403, {}, PermanentError, None),
        (404, {}, PermanentError, None),
        (400, {}, PermanentError, None),
    ],
)
async def test_statuses_map_to_the_error_vocabulary(
    status: int, headers: dict[str, str], error: type, retry_after: float | None
) -> None:
    body = {"status": status, "error": {"type": "x", "message": "pdl-secret is not valid"}}
    search = client(lambda r: httpx.Response(status, headers=headers, json=body))
    with pytest.raises(error) as caught:
        await discover_all(search, {}, limit=10)
    assert type(caught.value) is error
    assert getattr(caught.value, "retry_after", None) == retry_after
    assert str(caught.value) == f"discovery: HTTP {status} from POST /v5/company/search"


async def test_pdls_no_match_404_is_an_empty_page() -> None:
    error = {"type": "not_found", "message": "No records were found matching your search"}
    search = client(lambda r: httpx.Response(404, json={"status": 404, "error": error}))
    assert await discover_all(search, {}, limit=10) == []
    # A 404 without PDL's error body (a wrong base URL, say) is still an error.
    wrong = client(lambda r: httpx.Response(404, html="<h1>Not Found</h1>"))
    with pytest.raises(PermanentError):
        await discover_all(wrong, {}, limit=10)


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ConnectError])
async def test_transport_failures_are_transient(failure: type[httpx.TransportError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure("no answer", request=request)

    with pytest.raises(TransientError) as caught:
        await client(handler).search_page({}, 10)
    assert type(caught.value) is TransientError
    assert "pdl-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("response", "where"),
    [
        (httpx.Response(200, json=[]), "body"),
        (httpx.Response(200, json={"status": 200, "total": 3}), "data"),
        (httpx.Response(200, json={"data": {"id": "c1"}}), "data"),
        (httpx.Response(200, json={"data": [{"name": "no id"}]}), "data.0.id"),
        (
            httpx.Response(200, json={"data": [record(1, employee_count=-3)]}),
            "data.0.employee_count",
        ),
        (httpx.Response(200, json={"data": [], "scroll_token": 7}), "scroll_token"),
    ],
)
async def test_a_malformed_answer_is_permanent(response: httpx.Response, where: str) -> None:
    with pytest.raises(PermanentError, match=rf"^discovery: malformed response \({where}: "):
        await client(lambda r: response).search_page({}, 10)


async def test_an_answer_that_is_not_json_is_transient() -> None:
    cut = httpx.Response(200, content=b"{not json")
    with pytest.raises(UnreadableResponse, match=r"^discovery: unreadable response \(.*9 bytes"):
        await client(lambda r: cut).search_page({}, 10)


def test_icp_query_builds_an_es_bool_query() -> None:
    query = icp_query(
        ["marketing and advertising", "computer software", "computer software"],
        ["united states", "canada"],
        10,
        500,
    )
    assert query == {
        "bool": {
            "must": [
                {"terms": {"industry": ["computer software", "marketing and advertising"]}},
                {"terms": {"location.country": ["canada", "united states"]}},
                {"range": {"employee_count": {"gte": 10, "lte": 500}}},
            ]
        }
    }
    only_max = icp_query(industries=[], countries=["germany"], max_employees=50)
    assert only_max["bool"]["must"] == [
        {"terms": {"location.country": ["germany"]}},
        {"range": {"employee_count": {"lte": 50}}},
    ]
    assert icp_query([], []) == {"bool": {"must": []}}


@pytest.mark.parametrize(
    ("website", "domain"),
    [
        ("acme.example", "acme.example"),
        ("HTTPS://WWW.Acme.Example./about?x=1", "acme.example"),
        ("http://shop.acme.example:8080", "shop.acme.example"),
        ("  acme.example  ", "acme.example"),
        ("", None),
        (None, None),
        ("localhost", None),
        ("192.0.2.10", None),
        ("http://[2001:db8::1]/", None),
        ("http://exa mple.example", None),
        ("http://-acme.example", None),
        ("http://a..b.example", None),
        ("http://bücher.example/", "xn--bcher-kva.example"),
    ],
)
def test_domain_of(website: str | None, domain: str | None) -> None:
    assert domain_of(website) == domain
