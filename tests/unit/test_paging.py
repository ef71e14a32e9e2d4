"""Paging for the daily run on a mocked search: retries per page, the cap, the checkpoint."""

import json

import httpx
import pytest

from jobs.clients.discovery import CompanySearchClient
from jobs.errors import PermanentError, RateLimited
from jobs.models import Company
from jobs.prospecting.paging import PageRetry, discover_resumably
from jobs.prospecting.paging_log import Cursor


class MemoryLog:
    def __init__(self) -> None:
        self.pages: dict[int, list[Company]] = {}
        self.cursor = Cursor()

    async def load(self) -> tuple[list[Company], Cursor]:
        return [c for n in sorted(self.pages) for c in self.pages[n]], self.cursor

    async def save(self, page: int, companies: list[Company], cursor: Cursor) -> None:
        self.pages[page], self.cursor = companies, cursor


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def search(handler: httpx.MockTransport) -> CompanySearchClient:
    return CompanySearchClient(
        httpx.AsyncClient(transport=handler), base_url="https://pdl.test", api_key="k", timeout=3
    )


def pages(request: httpx.Request) -> httpx.Response:
    start = int(json.loads(request.content).get("scroll_token") or 0)
    data = [{"id": f"c{n}", "website": f"c{n}.example"} for n in range(start, start + 2)]
    token = str(start + 2) if start < 4 else None
    return httpx.Response(200, json={"data": data, "scroll_token": token})


def test_the_delay_grows_with_jitter_and_honours_retry_after_up_to_the_cap() -> None:
    low = PageRetry(base_delay_s=1, max_delay_s=4, max_retry_after_s=30, rand=lambda: 0.0)
    high = PageRetry(base_delay_s=1, max_delay_s=4, max_retry_after_s=30, rand=lambda: 1.0)
    assert [low.delay(n, None) for n in (1, 2, 3, 4)] == [0.5, 1, 2, 2]
    assert [high.delay(n, None) for n in (1, 2, 3, 4)] == [1, 2, 4, 4]
    assert high.delay(1, 12.0) == 12.0
    assert high.delay(1, 31.0) is None  # beyond the cap: defer the job instead


async def test_a_retry_after_beyond_the_cap_goes_to_the_runtime_at_once() -> None:
    sleeps = Sleeps()
    limited = httpx.MockTransport(lambda r: httpx.Response(429, headers={"Retry-After": "600"}))
    with pytest.raises(RateLimited) as caught:
        await discover_resumably(
            search(limited), {}, limit=10, log=MemoryLog(), retry=PageRetry(), sleep=sleeps
        )
    assert caught.value.retry_after == 600 and sleeps.waits == []


async def test_a_transient_page_is_given_up_after_its_attempts() -> None:
    sleeps, calls = Sleeps(), []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    with pytest.raises(Exception, match="HTTP 503"):
        await discover_resumably(
            search(httpx.MockTransport(down)),
            {},
            limit=10,
            log=MemoryLog(),
            retry=PageRetry(attempts=3, rand=lambda: 0.0),
            sleep=sleeps,
        )
    assert len(calls) == 3 and sleeps.waits == [0.25, 0.5]


async def test_a_permanent_error_is_not_retried() -> None:
    sleeps = Sleeps()
    with pytest.raises(PermanentError):
        await discover_resumably(
            search(httpx.MockTransport(lambda r: httpx.Response(401))),
            {},
            limit=10,
            log=MemoryLog(),
            retry=PageRetry(),
            sleep=sleeps,
        )
    assert sleeps.waits == []


async def test_a_finished_checkpoint_reads_nothing_again() -> None:
    log, calls = MemoryLog(), []

    def counted(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return pages(request)

    client = search(httpx.MockTransport(counted))
    first, _ = await discover_resumably(
        client, {}, limit=100, log=log, retry=PageRetry(), sleep=Sleeps()
    )
    again, incomplete = await discover_resumably(
        client, {}, limit=100, log=log, retry=PageRetry(), sleep=Sleeps()
    )
    assert [c.id for c in first] == [c.id for c in again] == [f"c{n}" for n in range(6)]
    assert len(calls) == 3 and incomplete is None and log.cursor.finished
