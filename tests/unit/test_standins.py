"""The offline stand-ins serve the bundled data through the real clients and protocols."""

import importlib.util
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobs.clients.discovery import CompanySearchClient, icp_query
from jobs.clients.email_finder import EmailFinderClient
from jobs.clients.standins import (
    DISCOVERY_BASE_URL,
    EMAIL_FINDER_BASE_URL,
    SampleCompany,
    load_sample_data,
    matches,
    sample_transport,
)
from jobs.web.fetch import WebsiteFetcher
from jobs.web.page import read_page
from tests.support.paging import discover_all

ROOT = Path(__file__).resolve().parents[2]
DATA = load_sample_data()
SEARCH = f"{DISCOVERY_BASE_URL}/v5/company/search"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=sample_transport(DATA)) as client:
        yield client


def pick(**site: object) -> SampleCompany:
    return next(c for c in DATA.companies if all(getattr(c.site, k) == v for k, v in site.items()))


def test_the_bundled_files_are_what_the_generator_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts/make_sample_data.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    monkeypatch.setattr(generator, "OUT", tmp_path)
    generator.main()
    for name in ("companies.json", "sites.json"):
        bundled = (ROOT / "jobs/sample_data" / name).read_bytes()
        assert (tmp_path / name).read_bytes() == bundled, f"{name}: rerun the generator"


def test_the_data_set_is_large_fictional_and_varied() -> None:
    companies = DATA.companies
    domains = [c.domain for c in companies]
    assert len(companies) == 240
    assert len(set(domains)) == len({c.record["id"] for c in companies}) == 240
    assert all(d.endswith(".example") for d in domains)
    for company in companies:
        assert all(e.value.endswith("@" + company.domain) for e in company.site.contacts)
        assert all(e.endswith("@" + company.domain) for e in company.site.page_emails)
        assert 5 <= company.record["employee_count"] <= 5000
    share = {
        "no emails": sum(not c.site.contacts for c in companies) / 240,
        "missing": sum(c.site.variant == "missing" for c in companies) / 240,
        "redirect": sum(c.site.variant == "redirect" for c in companies) / 240,
        "form": sum(c.site.contact_form for c in companies) / 240,
        "emails on page": sum(bool(c.site.page_emails) for c in companies) / 240,
    }
    assert 0.07 <= share["no emails"] <= 0.09 and 0.04 <= share["missing"] <= 0.06
    assert all(0.1 <= share[k] <= 0.7 for k in ("redirect", "form", "emails on page"))
    assert len({c.record["industry"] for c in companies}) >= 8
    assert {c.record["location"]["country"] for c in companies} >= {"united states", "canada"}
    assert {c.site.emails_as for c in companies if c.site.page_emails} == {"mailto", "text"}


def test_loading_twice_gives_equal_independent_data() -> None:
    again = load_sample_data()
    assert again == DATA
    again.companies[0].record["name"] = "changed"
    assert DATA.companies[0].record["name"] != "changed"


async def test_discovery_serves_every_company_in_pages(http: httpx.AsyncClient) -> None:
    client = CompanySearchClient(http, base_url=DISCOVERY_BASE_URL, api_key=None, timeout=1)
    companies = await discover_all(client, {"match_all": {}}, limit=10_000, page_size=37)
    assert [c.id for c in companies] == [c.record["id"] for c in DATA.companies]
    assert [c.domain for c in companies] == [c.domain for c in DATA.companies]
    assert (await client.search_page({}, 100)).total == 240


async def test_discovery_filters_like_the_provider(http: httpx.AsyncClient) -> None:
    client = CompanySearchClient(http, base_url=DISCOVERY_BASE_URL, api_key="k", timeout=1)
    query = icp_query(["retail", "construction"], ["canada", "united states"], 20, 300)
    companies = await discover_all(client, query, limit=1000, page_size=5)
    expected = [
        c.record["id"]
        for c in DATA.companies
        if c.record["industry"] in ("retail", "construction")
        and c.record["location"]["country"] in ("canada", "united states")
        and 20 <= c.record["employee_count"] <= 300
    ]
    assert len(expected) > 5  # so paging was exercised too
    assert [c.id for c in companies] == expected


RECORD = {
    "industry": "retail",
    "employee_count": 40,
    "tags": ["hiring", "series a"],
    "location": {"country": "canada"},
}


@pytest.mark.parametrize(
    ("query", "matched"),
    [
        (icp_query(["retail"], ["canada"], 40, 40), True),
        (icp_query(["retail"], ["germany"]), False),
        (icp_query([], [], 41), False),
        ({"bool": {"must": {"terms": {"tags": ["series a"]}}}}, True),  # any value of a list
        ({"bool": {"must": [{"terms": {"tags": ["series b"]}}]}}, False),
        ({"bool": {"must": [{"range": {"founded": {"gte": 2000}}}]}}, False),  # no such value
        # shapes it does not know match everything
        ({"bool": {"should": [{"term": {"industry": "mining"}}]}}, True),
        ({"bool": {"must": [{"match": {"name": "x"}}, "junk"]}}, True),
        ({"bool": {"must": [{"range": {"employee_count": {"gte": "many"}}}]}}, True),
        ({"match_all": {}}, True),
    ],
)
def test_matches_the_query_subset(query: dict[str, Any], matched: bool) -> None:
    assert matches(RECORD, query) is matched


async def test_discovery_answers_nothing_found_like_pdl(http: httpx.AsyncClient) -> None:
    query = icp_query(["mining"], [])
    response = await http.post(SEARCH, json={"query": query, "size": 10})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"query": {}, "size": 0},
        {"query": {}, "size": 101},
        {"query": {}, "size": "10"},
        {"size": 10},  # PDL wants a query (or sql)
        {"query": {}, "size": 10, "scroll_token": "not-a-token"},
        [1, 2],
    ],
)
async def test_discovery_rejects_a_bad_request(http: httpx.AsyncClient, body: object) -> None:
    response = await http.post(SEARCH, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_a_scroll_token_pages_only_its_own_query(http: httpx.AsyncClient) -> None:
    first = (await http.post(SEARCH, json={"query": {}, "size": 2})).json()
    assert first["scroll_token"] and first["total"] == 240
    token = first["scroll_token"]
    same = await http.post(SEARCH, json={"query": {}, "size": 2, "scroll_token": token})
    assert same.status_code == 200
    assert [r["id"] for r in same.json()["data"]] == [c.record["id"] for c in DATA.companies[2:4]]
    other = icp_query(["retail"], [])
    moved = await http.post(SEARCH, json={"query": other, "size": 2, "scroll_token": token})
    assert moved.status_code == 400


async def test_the_email_finder_answers_from_the_sample_contacts(
    http: httpx.AsyncClient,
) -> None:
    client = EmailFinderClient(http, base_url=EMAIL_FINDER_BASE_URL, api_key=None, timeout=1)
    known = next(c for c in DATA.companies if any(e.type == "personal" for e in c.site.contacts))
    contact = await client.best_contact(known.domain)
    assert contact is not None and contact.email.endswith("@" + known.domain)
    best = max(
        (e for e in known.site.contacts if e.type == "personal"),
        key=lambda e: e.confidence,
    )
    assert contact.confidence == best.confidence
    assert await client.best_contact(pick(contacts=()).domain) is None
    assert await client.best_contact("nobody-here.example") is None


async def test_the_email_finder_wants_a_domain(http: httpx.AsyncClient) -> None:
    response = await http.get(f"{EMAIL_FINDER_BASE_URL}/v2/domain-search", params={"limit": 10})
    assert response.status_code == 400
    assert response.json()["errors"][0]["id"] == "wrong_params"


async def test_sample_websites_behave_per_variant(http: httpx.AsyncClient) -> None:
    fetcher = WebsiteFetcher(http, max_bytes=100_000, max_redirects=3, timeout=2)

    form = pick(variant="page", contact_form=True, page_emails=())
    info = read_page(await fetcher.fetch(form.domain))
    assert info.status == 200 and info.has_contact_form and not info.emails
    assert info.title and info.title.startswith(form.record["display_name"])
    assert info.description == form.site.tagline

    plain = pick(variant="page", contact_form=False, page_emails=())
    info = read_page(await fetcher.fetch(f"https://www.{plain.domain}/"))
    assert info.status == 200 and not info.has_contact_form and not info.emails

    for style in ("mailto", "text"):
        shown = next(c for c in DATA.companies if c.site.page_emails and c.site.emails_as == style)
        info = read_page(await fetcher.fetch(shown.domain))
        assert info.emails == shown.site.page_emails

    moved = pick(variant="redirect")
    redirected = await fetcher.fetch(moved.domain)
    assert redirected.final_url.endswith(f"{moved.domain}/home") and redirected.status == 200
    assert read_page(redirected).title

    missing = await fetcher.fetch(pick(variant="missing").domain)
    assert missing.status == 404
    assert (await fetcher.fetch("no-such-company.example")).status == 404


async def test_website_routes(http: httpx.AsyncClient) -> None:
    moved = pick(variant="redirect").domain
    response = await http.get(f"http://{moved}/")
    assert response.status_code == 301 and response.headers["Location"] == "/home"
    page = pick(variant="page").domain
    assert (await http.get(f"http://{page}/home")).status_code == 404
    assert (await http.get(f"http://{page}/careers")).status_code == 404
    assert (await http.post(f"http://{page}/", content=b"x")).status_code == 405


async def test_answers_are_the_same_every_time() -> None:
    async def answers() -> list[bytes]:
        async with httpx.AsyncClient(transport=sample_transport(load_sample_data())) as http:
            first = await http.post(SEARCH, json={"query": {}, "size": 100})
            token = first.json()["scroll_token"]
            second = await http.post(SEARCH, json={"query": {}, "size": 100, "scroll_token": token})
            site = await http.get(f"http://{pick(variant='page', contact_form=True).domain}/")
            hunter = await http.get(
                f"{EMAIL_FINDER_BASE_URL}/v2/domain-search",
                params={"domain": DATA.companies[0].domain},
            )
            return [r.content for r in (first, second, site, hunter)]

    assert await answers() == await answers()
    assert json.loads((await answers())[1])["data"][0] == DATA.companies[100].record
