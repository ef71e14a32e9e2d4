"""Drafts quote only the company's own page (issue 15, finding 5): never an error page, a parked
domain, or a page the site redirected to elsewhere. The sample websites serve each kind; a real
daily run on a real Redis drafts, and the drafts are read at the far end, the approval stream."""

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from redis.asyncio import Redis

from jobs.clients.standins import (
    PLACEHOLDER_TITLE,
    SampleData,
    load_sample_data,
    sample_transport,
)
from jobs.deps import Deps
from jobs.keys import Keys
from jobs.web.fetch import WebsiteFetcher
from settings import Settings
from worker.client import QueueClient
from worker.registry import DAILY_JOB, job_specs

from .conftest import drain

KEYS = Keys()
# Every fourth company's site is its own page; the others answer 404, are parked, or moved
# to a hosting company's placeholder on another domain.
VARIANTS = ("page", "missing", "parked", "moved")
NOT_THEIRS = ("Not Found", "for sale", PLACEHOLDER_TITLE)


def mixed_sites() -> SampleData:
    data = load_sample_data()
    companies = tuple(
        company.model_copy(
            update={"site": company.site.model_copy(update={"variant": VARIANTS[n % 4]})}
        )
        for n, company in enumerate(data.companies)
    )
    return data.model_copy(update={"companies": companies})


@pytest.fixture
async def sites() -> AsyncIterator[tuple[SampleData, httpx.AsyncClient]]:
    data = mixed_sites()
    async with httpx.AsyncClient(transport=sample_transport(data)) as web:
        yield data, web


@pytest.mark.slow
async def test_drafts_quote_no_error_parked_or_foreign_page(
    settings: Settings, redis: Redis, sites: tuple[SampleData, httpx.AsyncClient]
) -> None:
    data, web = sites
    variant = {company.record["id"]: company.site.variant for company in data.companies}

    def fetch_mixed_sites(deps: Deps) -> Deps:
        return replace(deps, fetcher=WebsiteFetcher(web))

    client = await QueueClient.connect(settings, specs=job_specs(settings))
    try:
        await client.enqueue(DAILY_JOB)
        await drain(settings, adjust_deps=fetch_mixed_sites)
    finally:
        await client.close()
    drafts = [fields for _, fields in await redis.xrange(KEYS.approvals)]
    assert len(drafts) == settings.daily_limit
    by_variant: dict[str, list[str]] = {}
    for fields in drafts:
        by_variant.setdefault(variant[fields["company_id"]], []).append(fields["body"])
    assert set(by_variant) == set(VARIANTS), by_variant.keys()
    for kind in ("missing", "parked", "moved"):
        for body in by_variant[kind]:
            assert not any(text in body for text in NOT_THEIRS), (kind, body)
            assert '("' not in body, (kind, body)  # no page title quoted at all
    # The company's own page is still quoted where the wording reads a site.
    assert any('("' in body for body in by_variant["page"]), by_variant["page"]
