"""Companies from strangers that try to run script in the console: one named
`<script>alert(1)</script>`, one whose website's title is `"><img src=x onerror=alert(1)>`.

    for company, page in hostile_companies(fake):
        fake.serve_site(company, page)

Each copies the best-ranked sample company's firmographics and takes a smaller id, so a run
ranks it first and drafts it; its contacts are the sample's, moved to its own domain.
"""

import html
import re

from jobs.clients.discovery import CompanyRecord, to_company
from jobs.clients.standins import SampleCompany, load_sample_data, render_page
from jobs.prospecting.icp import IcpProfile
from jobs.prospecting.score import rank_companies
from tests.support.fake_providers import FakeProviders

SCRIPT_NAME = "<script>alert(1)</script>"
IMG_TITLE = '"><img src=x onerror=alert(1)>'
# RFC 2606's testing names: tests.support.loopback_sites resolves them to loopback.
SCRIPT_DOMAIN = "script-name.test"
HOSTILE_PREFIX = "0000hostile-"  # their ids: ranked first among equals, and told apart
IMG_DOMAIN = "img-title.test"


def best_sample(icp: IcpProfile) -> SampleCompany:
    samples = load_sample_data().companies
    by_id = {sample.record["id"]: sample for sample in samples}
    companies = [c for s in samples if (c := to_company(CompanyRecord.model_validate(s.record)))]
    return by_id[rank_companies(companies, icp)[0].id]


def _moved(template: SampleCompany, *, id_: str, name: str, domain: str, url: str) -> SampleCompany:
    contacts = tuple(
        contact.model_copy(update={"value": f"{contact.value.split('@')[0]}@{domain}"})
        for contact in template.site.contacts
    )
    record = {**template.record, "id": id_, "name": name.lower(), "display_name": name}
    record["website"] = url
    site = template.site.model_copy(update={"contacts": contacts, "page_emails": ()})
    return SampleCompany(record=record, domain=domain, site=site)


def hostile_companies(fake: FakeProviders, icp: IcpProfile) -> list[tuple[SampleCompany, str]]:
    """The two companies and the page each serves as its website."""
    template = best_sample(icp)
    named = _moved(
        template,
        id_=f"{HOSTILE_PREFIX}name",
        name=SCRIPT_NAME,
        domain=SCRIPT_DOMAIN,
        url=fake.site_url(SCRIPT_DOMAIN),
    )
    titled = _moved(
        template,
        id_=f"{HOSTILE_PREFIX}title",
        name="Imgtitle Labs",
        domain=IMG_DOMAIN,
        url=fake.site_url(IMG_DOMAIN),
    )
    # The whole title, as the site's own HTML carries it (escaped there, so a parser reads back
    # this very text, and a draft quoting the title's longest part quotes all of it).
    page = re.sub(
        r"<title>.*?</title>", f"<title>{html.escape(IMG_TITLE)}</title>", render_page(titled)
    )
    return [(named, render_page(named)), (titled, page)]
