"""The offline stand-ins serve the bundled data through the real clients and protocols."""

import httpx
import pytest

from jobs.clients.discovery import CompanySearchClient, icp_query
from jobs.clients.email_finder import EmailFinderClient
from jobs.clients.standins import (
    DISCOVERY_BASE_URL,
    EMAIL_FINDER_BASE_URL,
    load_sample_data,
    sample_transport,
)
from jobs.errors import PermanentError
from jobs.page import read_page
from jobs.web import WebsiteFetcher

DATA = load_sample_data()


@pytest.fixture
async def http() -> httpx.AsyncClient:
    async with httpx.AsyncClient(transport=sample_transport(DATA)) as client:
        yield client


def by_variant(variant: str) -> str:
    return next(c.record["website"] for c in DATA.companies if c.site.variant == variant)


def test_the_data_set_is_large_fictional_and_varied() -> None:
    domains = [c.record["website"] for c in DATA.companies]
    assert len(domains) == len(set(domains)) >= 200
    assert all(domain.endswith(".example") for domain in domains)
    variants = {c.site.variant for c in DATA.companies}
    assert variants == {"contact_form", "plain", "emails_on_page", "redirect", "missing"}
    assert any(not c.people for c in DATA.companies)


async def test_discovery_serves_every_company_in_pages(http: httpx.AsyncClient) -> None:
    client = CompanySearchClient(http, base_url=DISCOVERY_BASE_URL, api_key=None, timeout=1)
    companies = await client.discover({}, limit=10_000, page_size=37)
    assert len(companies) == len(DATA.companies)


async def test_discovery_filters_like_the_provider(http: httpx.AsyncClient) -> None:
    client = CompanySearchClient(http, base_url=DISCOVERY_BASE_URL, api_key=None, timeout=1)
    query = icp_query(
        industries=["retail"],
        countries=["canada", "united states"],
        min_employees=20,
        max_employees=300,
    )
    companies = await client.discover(query, limit=1000)
    assert companies
    for company in companies:
        assert company.industry == "retail"
        assert company.country in ("canada", "united states")
        assert 20 <= (company.employee_count or 0) <= 300


async def test_discovery_rejects_a_bad_page_size(http: httpx.AsyncClient) -> None:
    response = await http.post(f"{DISCOVERY_BASE_URL}/v5/company/search", json={"size": 500})
    assert response.status_code == 400


async def test_email_finder_answers_from_the_sample_people(http: httpx.AsyncClient) -> None:
    client = EmailFinderClient(http, base_url=EMAIL_FINDER_BASE_URL, api_key=None, timeout=1)
    with_people = next(c for c in DATA.companies if c.people)
    without = next(c for c in DATA.companies if not c.people)
    contact = await client.best_contact(with_people.record["website"])
    assert contact is not None and contact.email.endswith("@" + with_people.record["website"])
    assert await client.best_contact(without.record["website"]) is None
    with pytest.raises(PermanentError):
        await client.best_contact("")


async def test_sample_websites_behave_per_variant(http: httpx.AsyncClient) -> None:
    fetcher = WebsiteFetcher(http, max_bytes=100_000, max_redirects=3, timeout=2)
    form = read_page(await fetcher.fetch(by_variant("contact_form")))
    assert form.has_contact_form and form.title
    assert form.description
    emails = read_page(await fetcher.fetch(by_variant("emails_on_page")))
    assert emails.emails and emails.emails[0].startswith("contact@")
    redirected = await fetcher.fetch(by_variant("redirect"))
    assert redirected.final_url.endswith("/home") and redirected.status == 200
    missing = await fetcher.fetch(by_variant("missing"))
    assert missing.status == 404
