"""Discovery: a People Data Labs-style company search.

`POST {base}/v5/company/search` with an Elasticsearch-style `query`, a page `size` and the
`scroll_token` of the previous page; the key goes in `X-Api-Key`. Records are normalised into
`Company`; a record without a usable domain cannot be enriched and is dropped.
"""

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from jobs.clients.http import send_json
from jobs.models import Company

SERVICE = "discovery"
MAX_PAGE_SIZE = 100
MAX_PAGES = 100  # a bound on paging even if the provider keeps handing out tokens


class Location(BaseModel):
    model_config = ConfigDict(extra="ignore")
    country: str | None = None
    region: str | None = None
    locality: str | None = None


class CompanyRecord(BaseModel):
    """One record as the provider sends it; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    id: str
    name: str | None = None
    website: str | None = None
    industry: str | None = None
    employee_count: int | None = None
    location: Location | None = None
    founded: int | None = None
    tags: list[str] | None = None


class CompanyPage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: int = 200
    data: list[CompanyRecord] = []
    scroll_token: str | None = None
    total: int = 0


def domain_of(website: str | None) -> str | None:
    """'https://www.Acme.example/about' -> 'acme.example'; None when there is no host."""
    if not website:
        return None
    text = website.strip()
    host = httpx.URL(text if "://" in text else f"http://{text}").host.lower().rstrip(".")
    host = host.removeprefix("www.")
    return host if "." in host else None


def to_company(record: CompanyRecord) -> Company | None:
    domain = domain_of(record.website)
    if domain is None:
        return None
    location = record.location or Location()
    return Company(
        id=record.id,
        name=record.name or domain,
        domain=domain,
        website=record.website,
        industry=record.industry,
        employee_count=record.employee_count,
        country=location.country,
        region=location.region,
        founded=record.founded,
        tags=tuple(record.tags or ()),
    )


def icp_query(
    *,
    industries: list[str],
    countries: list[str],
    min_employees: int | None,
    max_employees: int | None,
) -> dict[str, Any]:
    """The Elasticsearch-style bool query for the ICP's firmographic filter."""
    must: list[dict[str, Any]] = []
    if industries:
        must.append({"terms": {"industry": sorted(industries)}})
    if countries:
        must.append({"terms": {"location.country": sorted(countries)}})
    size: dict[str, int] = {}
    if min_employees is not None:
        size["gte"] = min_employees
    if max_employees is not None:
        size["lte"] = max_employees
    if size:
        must.append({"range": {"employee_count": size}})
    return {"bool": {"must": must}}


class CompanySearchClient:
    def __init__(
        self, http: httpx.AsyncClient, *, base_url: str, api_key: str | None, timeout: float
    ) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/v5/company/search"
        self._headers = {"X-Api-Key": api_key} if api_key else {}
        self._timeout = httpx.Timeout(timeout)

    async def search_page(
        self, query: dict[str, Any], size: int, scroll_token: str | None = None
    ) -> CompanyPage:
        body: dict[str, Any] = {"query": query, "size": min(size, MAX_PAGE_SIZE)}
        if scroll_token:
            body["scroll_token"] = scroll_token
        request = self._http.build_request(
            "POST", self._url, json=body, headers=self._headers, timeout=self._timeout
        )
        return await send_json(self._http, request, CompanyPage, service=SERVICE)

    async def discover(
        self, query: dict[str, Any], *, limit: int, page_size: int = MAX_PAGE_SIZE
    ) -> list[Company]:
        """Page through the search until `limit` companies, an empty page or no next token."""
        companies: list[Company] = []
        seen: set[str] = set()
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = await self.search_page(query, min(page_size, limit - len(companies)), token)
            for record in page.data:
                company = to_company(record)
                if company is not None and company.id not in seen:
                    seen.add(company.id)
                    companies.append(company)
            token = page.scroll_token
            if not page.data or not token or len(companies) >= limit:
                break
        return companies[:limit]
