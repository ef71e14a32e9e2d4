"""Enrichment: read the company's website and ask the email finder for a contact, side by side."""

import asyncio

from jobs.clients.email_finder import EmailFinderClient
from jobs.errors import JobError, most_severe
from jobs.models import Company, Contact, Enrichment, WebsiteInfo
from jobs.web.fetch import WebsiteFetcher
from jobs.web.page import not_own_page, read_page

# An address found only on the website is a weaker lead than the email finder's pick.
WEBSITE_EMAIL_CONFIDENCE = 30


async def read_website(
    fetcher: WebsiteFetcher, company: Company
) -> tuple[WebsiteInfo | None, str | None]:
    """The site's facts, or why it could not be read.

    A site that is down, refused or slow is information about the prospect, not a reason to
    retry the whole job: enrichment goes on without it. So is a page that is not the company's
    own (an error page, a parked domain, a redirect elsewhere): none of it is kept, since a
    draft would quote it and scoring would count its addresses."""
    try:
        page = await fetcher.fetch(company.website or company.domain)
    except JobError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    info = read_page(page)
    own = [company.domain, *([company.website] if company.website else [])]
    problem = not_own_page(page, info, own)
    if problem is not None:
        return None, f"not the company's own page: {problem}"
    return info, None


async def enrich(
    company: Company, *, fetcher: WebsiteFetcher, email_finder: EmailFinderClient
) -> Enrichment:
    # Both lookups run at once to keep a try short. An email-finder error propagates: the
    # runtime retries a transient one, and nothing of this try is checkpointed. The TaskGroup
    # wraps it in an ExceptionGroup, which the runtime could not classify: raise the member
    # itself (its cause and traceback intact), so a 401 is not retried and a 429 keeps its wait.
    try:
        async with asyncio.TaskGroup() as group:
            site = group.create_task(read_website(fetcher, company))
            found = group.create_task(email_finder.best_contact(company.domain))
    except BaseExceptionGroup as errors:
        member = most_severe(errors)
        raise member from member.__cause__
    website, website_error = site.result()
    contact = found.result()
    if contact is None and website is not None and website.emails:
        contact = Contact(
            email=website.emails[0], confidence=WEBSITE_EMAIL_CONFIDENCE, source="website"
        )
    return Enrichment(website=website, website_error=website_error, contact=contact)
