"""The offline default: local stand-ins that speak the real protocols over httpx.

One `httpx.MockTransport` answers, by host, the People Data Labs-style company search, the
Hunter-style domain search and the sample companies' websites, from the bundled data set. The
real clients run unchanged on top of it, so the offline run exercises the same request building,
paging, parsing and error mapping as production. It is mounted for the reserved `.example`
domain only (RFC 2606), which never resolves on a real network.
"""

import base64
import html
import json
from functools import cache
from importlib.resources import files
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter

DISCOVERY_HOST = "discovery.offline.example"
EMAIL_FINDER_HOST = "emails.offline.example"
DISCOVERY_BASE_URL = f"http://{DISCOVERY_HOST}"
EMAIL_FINDER_BASE_URL = f"http://{EMAIL_FINDER_HOST}"


class SampleSite(BaseModel):
    model_config = ConfigDict(frozen=True)
    variant: str  # contact_form | plain | emails_on_page | redirect | missing
    tagline: str
    page_emails: tuple[str, ...] = ()


class SampleCompany(BaseModel):
    model_config = ConfigDict(frozen=True)
    record: dict[str, Any]  # the discovery record, in the provider's own shape
    site: SampleSite
    people: tuple[dict[str, Any], ...] = ()


class SampleData(BaseModel):
    companies: tuple[SampleCompany, ...]

    def by_domain(self) -> dict[str, SampleCompany]:
        return {company.record["website"]: company for company in self.companies}


@cache
def load_sample_data() -> SampleData:
    raw = files("jobs").joinpath("sample_data/companies.json").read_bytes()
    companies = TypeAdapter(tuple[SampleCompany, ...]).validate_json(raw)
    return SampleData(companies=companies)


def _field(record: dict[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def matches(record: dict[str, Any], query: dict[str, Any]) -> bool:
    """The subset of the Elasticsearch query DSL the ICP filter uses: bool.must of terms/range."""
    for clause in query.get("bool", {}).get("must", []):
        if "terms" in clause:
            [(name, allowed)] = clause["terms"].items()
            if _field(record, name) not in allowed:
                return False
        elif "range" in clause:
            [(name, bounds)] = clause["range"].items()
            value = _field(record, name)
            if value is None:
                return False
            if "gte" in bounds and value < bounds["gte"]:
                return False
            if "lte" in bounds and value > bounds["lte"]:
                return False
    return True


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"status": status, "error": {"message": message}})


def _company_search(data: SampleData, request: httpx.Request) -> httpx.Response:
    if request.method != "POST" or request.url.path != "/v5/company/search":
        return _error(404, "not found")
    try:
        body = json.loads(request.content)
        size = int(body.get("size", 10))
        offset = (
            int(base64.urlsafe_b64decode(body["scroll_token"])) if body.get("scroll_token") else 0
        )
    except (ValueError, TypeError, KeyError):
        return _error(400, "malformed request body")
    if not 1 <= size <= 100:
        return _error(400, "size must be between 1 and 100")
    query = body.get("query") or {}
    hits = [c.record for c in data.companies if matches(c.record, query)]
    page = hits[offset : offset + size]
    following = offset + len(page)
    token = (
        base64.urlsafe_b64encode(str(following).encode()).decode()
        if following < len(hits)
        else None
    )
    return httpx.Response(
        200, json={"status": 200, "data": page, "scroll_token": token, "total": len(hits)}
    )


def _domain_search(data: SampleData, request: httpx.Request) -> httpx.Response:
    if request.url.path != "/v2/domain-search":
        return _error(404, "not found")
    domain = request.url.params.get("domain", "").lower()
    if not domain:
        return _error(400, "You are missing the domain parameter")
    company = data.by_domain().get(domain)
    people = list(company.people) if company else []
    name = company.record["name"] if company else None
    return httpx.Response(
        200,
        json={
            "data": {"domain": domain, "organization": name, "emails": people},
            "meta": {"results": len(people), "limit": 10, "offset": 0},
        },
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{name} | {headline}</title>
<meta name="description" content="{tagline}">
</head><body>
<header><nav><a href="/">{name}</a> <a href="/pricing">Pricing</a> <a href="/about">About</a></nav></header>
<main><h1>{headline}</h1><p>{tagline}</p>{extra}</main>
<footer><p>&copy; {name}</p></footer>
</body></html>"""

FORM = """<section id="contact"><h2>Talk to us</h2>
<form action="/contact" method="post"><input type="email" name="email" required>
<textarea name="message"></textarea><button>Send</button></form></section>"""


def _website(company: SampleCompany, request: httpx.Request) -> httpx.Response:
    site, name = company.site, html.escape(company.record["name"])
    if site.variant == "missing":
        return httpx.Response(404, html="<h1>Not found</h1>")
    if site.variant == "redirect" and request.url.path == "/":
        return httpx.Response(301, headers={"Location": "/home"})
    extra = FORM if site.variant == "contact_form" else ""
    if site.page_emails:
        links = " ".join(f'<a href="mailto:{e}">{html.escape(e)}</a>' for e in site.page_emails)
        extra += f"<p>Write to us: {links}</p>"
    industry = (company.record.get("industry") or "business").title()
    page = PAGE.format(
        name=name,
        headline=html.escape(f"{industry}, done well"),
        tagline=html.escape(site.tagline),
        extra=extra,
    )
    return httpx.Response(200, html=page)


def sample_transport(data: SampleData) -> httpx.MockTransport:
    sites = data.by_domain()

    def handle(request: httpx.Request) -> httpx.Response:
        host = request.url.host.lower()
        if host == DISCOVERY_HOST:
            return _company_search(data, request)
        if host == EMAIL_FINDER_HOST:
            return _domain_search(data, request)
        company = sites.get(host.removeprefix("www."))
        if company is None:
            return httpx.Response(404, html="<h1>No such site</h1>")
        return _website(company, request)

    return httpx.MockTransport(handle)
