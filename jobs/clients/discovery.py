"""Discovery: a People Data Labs-style company search.

`POST {base}/v5/company/search` with an Elasticsearch-style `query`, a page `size` and the
`scroll_token` of the previous page; the key goes in `X-Api-Key`. Records are normalised into
`Company`; a record without a usable domain cannot be enriched or contacted, so it is dropped.
PDL answers a search that matches nothing with a 404 (`error.type` "not_found"): that is an
empty page, not an error.
"""

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from jobs.clients.gate import RateGate
from jobs.clients.http import parse_body, raise_for_status, send
from jobs.models import Company

SERVICE = "discovery"
MAX_PAGE_SIZE = 100  # PDL's own cap on `size`
MAX_PAGES = 100  # bounds paging even if the provider keeps handing out tokens


class _Lenient(BaseModel):
    # Providers add fields without notice; only the ones we read are checked.
    model_config = ConfigDict(extra="ignore")


class Location(_Lenient):
    country: str | None = None
    region: str | None = None
    locality: str | None = None


class CompanyRecord(_Lenient):
    """One record as the provider sends it."""

    id: str = Field(min_length=1, max_length=128)
    name: str | None = None
    display_name: str | None = None  # PDL lowercases `name`; this keeps the company's casing
    website: str | None = None
    industry: str | None = None
    employee_count: int | None = Field(default=None, ge=0)
    size: str | None = None
    location: Location | None = None
    founded: int | None = None
    tags: list[str] | None = None


class CompanyPage(_Lenient):
    status: int = 200
    data: list[CompanyRecord]  # required: a 200 without it is not an empty result but a bug
    scroll_token: str | None = None
    total: int | None = None


class ErrorDetail(_Lenient):
    type: str | None = None


class ErrorBody(_Lenient):
    error: ErrorDetail | None = None


def no_match(response: httpx.Response) -> bool:
    """PDL's "nothing matched" 404, told apart from a wrong URL's 404 by its error body."""
    if response.status_code != 404:
        return False
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValueError:
        return False
    return body.error is not None and body.error.type == "not_found"


def new_companies(page: CompanyPage, ids: set[str], domains: set[str]) -> list[Company]:
    """The page's usable companies not seen before; `ids` and `domains` learn them."""
    found = []
    for record in page.data:
        company = to_company(record)
        # Two records for one domain would mail the same people twice.
        if company is None or company.id in ids or company.domain in domains:
            continue
        ids.add(company.id)
        domains.add(company.domain)
        found.append(company)
    return found


def next_token(page: CompanyPage, token: str | None) -> str | None:
    """The token of the page after `page`, or None when paging ends: an empty page, no token,
    or the same token again (which would loop forever)."""
    if not page.data or not page.scroll_token or page.scroll_token == token:
        return None
    return page.scroll_token


# A DNS name of letters, digits and inner hyphens (IDNs arrive in their xn-- form).
_HOSTNAME = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


def domain_of(website: str | None) -> str | None:
    """'https://www.Acme.example/about' -> 'acme.example'; None when there is no usable host."""
    text = (website or "").strip()
    if not text:
        return None
    try:
        host = httpx.URL(text if "://" in text else f"http://{text}").raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeDecodeError):
        return None
    host = host.lower().rstrip(".").removeprefix("www.")
    try:
        ipaddress.ip_address(host)
        return None  # an address is not a company's domain, and an email finder cannot use it
    except ValueError:
        pass
    return host if _HOSTNAME.match(host) else None


def to_company(record: CompanyRecord) -> Company | None:
    domain = domain_of(record.website)
    if domain is None:
        return None
    location = record.location or Location()
    return Company(
        id=record.id,
        name=record.display_name or record.name or domain,
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
    industries: Sequence[str],
    countries: Sequence[str],
    min_employees: int | None = None,
    max_employees: int | None = None,
) -> dict[str, Any]:
    """The Elasticsearch bool query for the ICP's firmographic filter.

    An empty list or a None bound leaves that filter out. Values are sorted so the same ICP
    always makes the same query (and so the same scroll)."""
    must: list[dict[str, Any]] = []
    if industries:
        must.append({"terms": {"industry": sorted(set(industries))}})
    if countries:
        must.append({"terms": {"location.country": sorted(set(countries))}})
    bounds = {
        op: value
        for op, value in (("gte", min_employees), ("lte", max_employees))
        if value is not None
    }
    if bounds:
        must.append({"range": {"employee_count": bounds}})
    return {"bool": {"must": must}}


class CompanySearchClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str | None,
        timeout: float,
        gate: RateGate | None = None,
    ) -> None:
        self._http = http
        self._gate = gate
        self._url = f"{base_url.rstrip('/')}/v5/company/search"
        self._headers = {"X-Api-Key": api_key} if api_key else {}
        self._timeout = httpx.Timeout(timeout)

    async def search_page(
        self, query: dict[str, Any], size: int, scroll_token: str | None = None
    ) -> CompanyPage:
        """One page of raw records. Raises TransientError / RateLimited / PermanentError."""
        body: dict[str, Any] = {"query": query, "size": max(1, min(size, MAX_PAGE_SIZE))}
        if scroll_token:
            body["scroll_token"] = scroll_token
        request = self._http.build_request(
            "POST", self._url, json=body, headers=self._headers, timeout=self._timeout
        )
        response = await send(self._http, request, service=SERVICE, gate=self._gate)
        if no_match(response):
            return CompanyPage(data=[], total=0)
        raise_for_status(response, SERVICE)
        return parse_body(response, CompanyPage, service=SERVICE)
