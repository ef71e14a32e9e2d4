"""The daily run's discovery in a test: an in-memory checkpoint, recorded waits, one read."""

from typing import Any

from jobs.clients.discovery import MAX_PAGE_SIZE, CompanySearchClient
from jobs.models import Company
from jobs.prospecting.paging import PageRetry, discover_resumably
from jobs.prospecting.paging_log import Cursor


class MemoryLog:
    """The paging checkpoint, kept in memory."""

    def __init__(self) -> None:
        self.pages: dict[int, list[Company]] = {}
        self.cursor = Cursor()

    async def load(self) -> tuple[list[Company], Cursor]:
        return [c for n in sorted(self.pages) for c in self.pages[n]], self.cursor

    async def save(self, page: int, companies: list[Company], cursor: Cursor) -> None:
        self.pages[page], self.cursor = companies, cursor


class Sleeps:
    """Records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def discover_all(
    search: CompanySearchClient,
    query: dict[str, Any],
    *,
    limit: int,
    page_size: int = MAX_PAGE_SIZE,
) -> list[Company]:
    """What the daily run's discovery reads, one attempt per page: a page's error is raised."""
    companies, incomplete = await discover_resumably(
        search,
        query,
        limit=limit,
        log=MemoryLog(),
        retry=PageRetry(attempts=1),
        sleep=Sleeps(),
        page_size=page_size,
    )
    if incomplete is not None:
        raise AssertionError(f"discovery ended early: {incomplete}")
    return companies
