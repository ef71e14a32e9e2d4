"""Discovery for the daily run: each page retried on its own, paging checkpointed in Redis.

One bad answer among many pages should not cost the day's run, nor make a retry read every
page again. So a page is asked again a few times inside the job (transient errors and
malformed pages, with backoff and jitter, honouring Retry-After up to a cap); every good page
is checkpointed (its companies and the next scroll token), so a retry of the job resumes after
the last good page; and a page that stays malformed ends discovery with what was read, which
the run's summary then reports.
"""

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from jobs.clients.discovery import (
    MAX_PAGE_SIZE,
    MAX_PAGES,
    CompanyPage,
    CompanySearchClient,
    new_companies,
    next_token,
)
from jobs.errors import MalformedResponse, TransientError, UnreadableResponse
from jobs.models import Company
from jobs.prospecting.paging_log import Cursor, PagingLog

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class PageRetry:
    attempts: int = 4  # per page, within one try of the job
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    # A longer Retry-After is not waited out in a worker slot: the error goes to the runtime,
    # which defers the job, and its retry resumes from the checkpoint.
    max_retry_after_s: float = 30.0
    rand: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt (exponential, jittered to [half, full],
        never sooner than Retry-After), or None when Retry-After is beyond the cap."""
        if retry_after is not None and retry_after > self.max_retry_after_s:
            return None
        ceiling: float = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return max(ceiling * (0.5 + self.rand() / 2), retry_after or 0.0)


async def discover_resumably(
    search: CompanySearchClient,
    query: dict[str, Any],
    *,
    limit: int,
    log: PagingLog,
    retry: PageRetry,
    sleep: Sleep,
    page_size: int = MAX_PAGE_SIZE,
) -> tuple[list[Company], str | None]:
    """Up to `limit` distinct companies, and why discovery ended early (None when it did not).

    Raises the page's TransientError once its attempts are spent (or it asks to wait past the
    cap), and any PermanentError other than a malformed page: the job's retry resumes."""
    companies, cursor = await log.load()
    ids = {company.id for company in companies}
    domains = {company.domain for company in companies}
    while not cursor.finished and len(companies) < limit and cursor.pages < MAX_PAGES:
        number = cursor.pages + 1
        # Ask only for what is still wanted: PDL bills per record returned.
        size = min(page_size, limit - len(companies))
        try:
            page = await _page(search, query, size, cursor.token, retry, sleep)
        except (MalformedResponse, UnreadableResponse) as exc:
            cursor = cursor.model_copy(
                update={"finished": True, "incomplete": f"malformed page {number}: {exc}"}
            )
            await log.save(number, [], cursor)
            break
        found = new_companies(page, ids, domains)
        token = next_token(page, cursor.token)
        cursor = Cursor(token=token, pages=number, finished=token is None)
        await log.save(number, found, cursor)
        companies += found
    return companies[:limit], cursor.incomplete


async def _page(
    search: CompanySearchClient,
    query: dict[str, Any],
    size: int,
    token: str | None,
    retry: PageRetry,
    sleep: Sleep,
) -> CompanyPage:
    attempt = 1
    while True:
        try:
            return await search.search_page(query, size, token)
        except (TransientError, MalformedResponse) as exc:
            retry_after = exc.retry_after if isinstance(exc, TransientError) else None
            delay = retry.delay(attempt, retry_after) if attempt < retry.attempts else None
            if delay is None:
                raise
            await sleep(delay)
            attempt += 1
