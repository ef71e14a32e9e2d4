"""The offline default: local stand-ins that speak the real protocols over httpx.

One `httpx.MockTransport` answers, by host, the People Data Labs-style company search, the
Hunter-style domain search and the sample companies' websites, from the bundled data set. The
real clients run unchanged on top of it, so an offline run exercises the same request building,
paging, parsing and error mapping as production. Everything lives under the reserved `.example`
domain (RFC 2606), which never resolves on a real network. Answers depend only on the data and
the request, so every run sees the same ones.
"""

import base64
import hashlib
import html
import json
from importlib.resources import files
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from jobs.clients.discovery import CompanyRecord, domain_of

DISCOVERY_HOST = "discovery.offline.example"
EMAIL_FINDER_HOST = "emails.offline.example"
DISCOVERY_BASE_URL = f"http://{DISCOVERY_HOST}"
EMAIL_FINDER_BASE_URL = f"http://{EMAIL_FINDER_HOST}"


class _Sample(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SampleVerification(_Sample):
    status: Literal["valid", "accept_all", "unknown", "invalid"]


class SampleContact(_Sample):
    """One address the email finder knows, in Hunter's shape."""

    value: str
    type: Literal["personal", "generic"]
    confidence: int = Field(ge=0, le=100)
    first_name: str | None = None
    last_name: str | None = None
    position: str | None = None
    seniority: str | None = None
    department: str | None = None
    verification: SampleVerification | None = None


class SampleSite(_Sample):
    """How a company's website behaves, and who the email finder knows there."""

    # redirect: / -> 301 /home; missing: 404; parked: a domain seller's page (200); moved:
    # 301 to a hosting company's placeholder on another domain (200).
    variant: Literal["page", "redirect", "missing", "parked", "moved"]
    contact_form: bool
    page_emails: tuple[str, ...] = ()
    emails_as: Literal["mailto", "text"] = "mailto"
    tagline: str
    contacts: tuple[SampleContact, ...] = ()


class SampleCompany(_Sample):
    record: dict[str, Any]  # the discovery record in the provider's own shape, served verbatim
    domain: str
    site: SampleSite


class SampleData(_Sample):
    companies: tuple[SampleCompany, ...]


def _bundled(name: str) -> bytes:
    # Through importlib.resources, so it also works from an installed wheel.
    return files("jobs").joinpath(f"sample_data/{name}").read_bytes()


def load_sample_data() -> SampleData:
    """The bundled data set, checked: every record parses as discovery will parse it, and has
    a site. A mismatch is a bug in the generator, so it fails loudly here."""
    records = TypeAdapter(list[dict[str, Any]]).validate_json(_bundled("companies.json"))
    sites = TypeAdapter(dict[str, SampleSite]).validate_json(_bundled("sites.json"))
    companies = []
    for record in records:
        domain = domain_of(CompanyRecord.model_validate(record).website)
        if domain is None or domain not in sites:
            raise ValueError(f"sample record {record.get('id')!r} has no site in sites.json")
        companies.append(SampleCompany(record=record, domain=domain, site=sites[domain]))
    return SampleData(companies=tuple(companies))


# --- discovery: POST /v5/company/search ----------------------------------------------------


def _field(record: dict[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def matches(record: dict[str, Any], query: dict[str, Any]) -> bool:
    """The part of the Elasticsearch query DSL the ICP filter uses: `terms` and `range` clauses
    in `bool.must`. Anything else matches everything, so an unknown query shape returns all."""
    boolean = query.get("bool") if isinstance(query, dict) else None
    must = boolean.get("must", []) if isinstance(boolean, dict) else []
    for clause in must if isinstance(must, list) else [must]:
        terms = clause.get("terms") if isinstance(clause, dict) else None
        ranges = clause.get("range") if isinstance(clause, dict) else None
        for name, allowed in terms.items() if isinstance(terms, dict) else ():
            value = _field(record, name)
            # As in Elasticsearch, a list field (tags) matches when any of its values does.
            values = value if isinstance(value, list) else [value]
            if isinstance(allowed, list) and not any(v in allowed for v in values):
                return False
        for name, bounds in ranges.items() if isinstance(ranges, dict) else ():
            value = _field(record, name)
            low = bounds.get("gte") if isinstance(bounds, dict) else None
            high = bounds.get("lte") if isinstance(bounds, dict) else None
            if (_number(low) or _number(high)) and not _number(value):
                return False
            if (_number(low) and value < low) or (_number(high) and value > high):
                return False
    return True


def _pdl_error(status: int, kind: str, message: str) -> httpx.Response:
    body = {"status": status, "error": {"type": kind, "message": message}}
    return httpx.Response(status, json=body)


def _fingerprint(query: Any) -> str:
    return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:12]


def _scroll_token(query: Any, offset: int) -> str:
    # Opaque to the client, like PDL's; bound to the query so it cannot page another search.
    return base64.urlsafe_b64encode(f"{offset}:{_fingerprint(query)}".encode()).decode()


def _scroll_offset(token: str, query: Any) -> int | None:
    try:
        offset, fingerprint = base64.urlsafe_b64decode(token).decode().split(":")
        return int(offset) if fingerprint == _fingerprint(query) and int(offset) >= 0 else None
    except (ValueError, UnicodeDecodeError):
        return None


def _company_search(data: SampleData, request: httpx.Request) -> httpx.Response:
    if request.url.path != "/v5/company/search":
        return _pdl_error(404, "not_found", "no such endpoint")
    if request.method != "POST":
        return _pdl_error(405, "invalid_request_error", "use POST")
    try:
        body = json.loads(request.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _pdl_error(400, "invalid_request_error", "the body is not a JSON object")
    query, size = body.get("query"), body.get("size", 1)  # PDL's default size is 1
    if not isinstance(query, dict):
        return _pdl_error(400, "invalid_request_error", "one of query or sql is required")
    if type(size) is not int or not 1 <= size <= 100:
        return _pdl_error(400, "invalid_request_error", "size must be between 1 and 100")
    offset = 0
    if body.get("scroll_token"):
        found = _scroll_offset(str(body["scroll_token"]), query)
        if found is None:
            return _pdl_error(400, "invalid_request_error", "invalid scroll_token")
        offset = found
    hits = [company.record for company in data.companies if matches(company.record, query)]
    if not hits:
        # What PDL does when nothing matches: a 404, not an empty 200.
        return _pdl_error(404, "not_found", "No records were found matching your search")
    page = hits[offset : offset + size]
    following = offset + len(page)
    token = _scroll_token(query, following) if following < len(hits) else None
    answer = {"status": 200, "data": page, "scroll_token": token, "total": len(hits)}
    return httpx.Response(200, json=answer)


# --- email finder: GET /v2/domain-search -----------------------------------------------------


def _hunter_error(status: int, kind: str, details: str) -> httpx.Response:
    body = {"errors": [{"id": kind, "code": status, "details": details}]}
    return httpx.Response(status, json=body)


def _domain_search(sites: dict[str, SampleCompany], request: httpx.Request) -> httpx.Response:
    if request.url.path != "/v2/domain-search" or request.method != "GET":
        return _hunter_error(404, "not_found", "no such endpoint")
    domain = domain_of(request.url.params.get("domain"))
    if domain is None:
        return _hunter_error(400, "wrong_params", "You are missing the domain parameter")
    company = sites.get(domain)
    emails = [c.model_dump(mode="json") for c in company.site.contacts] if company else []
    organization = company.record.get("display_name") if company else None
    meta = {"results": len(emails), "limit": 10, "offset": 0, "params": {"domain": domain}}
    data = {"domain": domain, "organization": organization, "emails": emails[:10]}
    return httpx.Response(200, json={"data": data, "meta": meta})


# --- the sample websites -----------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} | {industry}</title>
<meta name="description" content="{tagline}">
<link rel="stylesheet" href="/assets/site.css">
</head>
<body>
<header><a class="logo" href="/">{name}</a>
<nav><a href="/product">Product</a> <a href="/customers">Customers</a>
<a href="/about">About</a></nav></header>
<main>
<section class="hero"><h1>{tagline}</h1><p>Trusted by teams across {country}.</p></section>
<section class="facts"><p>Founded in {founded}. {size} people in {place}.</p></section>
{contact}
</main>
<footer><p>&copy; {year} {name}. All rights reserved.</p></footer>
</body>
</html>
"""

FORM = """<section id="contact"><h2>Talk to our team</h2>
<form action="/contact" method="post">
<label>Work email <input type="email" name="email" required></label>
<label>Message <textarea name="message" rows="4"></textarea></label>
<button type="submit">Send</button>
</form></section>"""

NOT_FOUND = """<!doctype html><html><head><title>404 Not Found</title></head>
<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>"""


PLACEHOLDER_HOST = "sitebuilder-hosting.example"
PLACEHOLDER_TITLE = "Website coming soon"
PLACEHOLDER = f"""<!doctype html><html><head><title>{PLACEHOLDER_TITLE}</title>
<meta name="description" content="This site is hosted by Sitebuilder. Its owner has not published
it yet."></head><body><h1>Coming soon</h1><p>Build your own site with Sitebuilder.</p></body>
</html>"""
PARKED_TITLE = "{domain} is for sale"
PARKED = """<!doctype html><html><head><title>{title}</title>
<meta name="description" content="Buy this domain: {domain} may be for sale by its owner.">
</head><body><h1>{domain}</h1><p>This domain may be for sale. Inquire now.</p>
<p>Related searches: Business Software, CRM Tools, Marketing Services</p>
<script src="https://parking.domain-market.example/park.js"></script></body></html>"""


def _contact_block(site: SampleSite) -> str:
    parts = [FORM] if site.contact_form else []
    if site.page_emails:
        if site.emails_as == "mailto":
            links = [f'<a href="mailto:{e}">{html.escape(e)}</a>' for e in site.page_emails]
        else:  # printed as text, as many small sites do to dodge (some) scrapers
            links = [html.escape(e) for e in site.page_emails]
        parts.append(f"<p>Questions? Write to {' or '.join(links)}.</p>")
    return "\n".join(parts)


def render_page(company: SampleCompany) -> str:
    record, site = company.record, company.site
    location = record.get("location") or {}
    name = record.get("display_name") or record.get("name") or company.domain
    return PAGE.format(
        name=html.escape(name),
        industry=html.escape((record.get("industry") or "Business").capitalize()),
        country=html.escape((location.get("country") or "the world").title()),
        tagline=html.escape(site.tagline, quote=True),
        founded=record.get("founded") or "the early days",
        size=html.escape(str(record.get("size") or "A few")),
        place=html.escape((location.get("locality") or "our office").title()),
        year=2026,  # fixed, so a page never changes between runs
        contact=_contact_block(site),
    )


def _website(company: SampleCompany | None, request: httpx.Request) -> httpx.Response:
    if company is None or company.site.variant == "missing":
        return httpx.Response(404, html=NOT_FOUND)
    if request.method not in ("GET", "HEAD"):
        return httpx.Response(405, headers={"Allow": "GET, HEAD"})
    if company.site.variant == "parked":
        domain = html.escape(company.domain)
        return httpx.Response(200, html=PARKED.format(title=PARKED_TITLE, domain=domain))
    if company.site.variant == "moved":
        moved_to = f"https://{PLACEHOLDER_HOST}/?from={company.domain}"
        return httpx.Response(301, headers={"Location": moved_to})
    home = "/home" if company.site.variant == "redirect" else "/"
    if request.url.path == "/" and home != "/":
        return httpx.Response(301, headers={"Location": home}, html="<a href='/home'>Moved</a>")
    if request.url.path not in (home, home + "/", "/index.html"):
        return httpx.Response(404, html=NOT_FOUND)
    return httpx.Response(200, html=render_page(company))


def sample_transport(data: SampleData) -> httpx.MockTransport:
    """A transport answering for every `.example` host in `data`; mount it for `*.example`."""
    sites = {company.domain: company for company in data.companies}

    def handle(request: httpx.Request) -> httpx.Response:
        host = request.url.host.lower()
        if host == DISCOVERY_HOST:
            return _company_search(data, request)
        if host == EMAIL_FINDER_HOST:
            return _domain_search(sites, request)
        if host == PLACEHOLDER_HOST:
            return httpx.Response(200, html=PLACEHOLDER)
        return _website(sites.get(host.removeprefix("www.")), request)

    return httpx.MockTransport(handle)
