"""The daily run survives the search API's bad days: no matches, faults, malformed pages."""

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from jobs.clients.discovery import CompanySearchClient
from jobs.deps import Deps
from jobs.errors import TransientError
from jobs.models import DailyRunRequest
from jobs.prospecting.daily import daily_prospect_queue
from settings import Settings
from worker.app import build_deps

from .conftest import make_settings
from .test_daily_retry import NoProgress

Handler = Callable[[httpx.Request, int], httpx.Response]
PAGES = 5
PAGE_SIZE = 4


def record(n: int) -> dict[str, Any]:
    return {
        "id": f"c{n}",
        "name": f"company {n}",
        "website": f"c{n}.example",
        "industry": "computer software",
        "employee_count": 40,
        "location": {"country": "united states"},
    }


def good_page(request: httpx.Request) -> httpx.Response:
    start = int(json.loads(request.content).get("scroll_token") or 0)
    token = str(start + PAGE_SIZE) if start + PAGE_SIZE < PAGES * PAGE_SIZE else None
    data = [record(n) for n in range(start, start + PAGE_SIZE)]
    return httpx.Response(200, json={"status": 200, "data": data, "scroll_token": token})


def page_number(request: httpx.Request) -> int:
    return int(json.loads(request.content).get("scroll_token") or 0) // PAGE_SIZE + 1


class Search:
    """A PDL-style search whose answers the test scripts, counting each request per page."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.requests: list[int] = []

    def client(self) -> CompanySearchClient:
        def handle(request: httpx.Request) -> httpx.Response:
            number = page_number(request)
            self.requests.append(number)
            return self.answer(request, self.requests.count(number))

        http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
        return CompanySearchClient(http, base_url="https://pdl.test", api_key="k", timeout=3)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url, daily_limit=5, discovery_cap=100)


@pytest.fixture
async def deps(settings: Settings) -> AsyncIterator[Deps]:
    async with AsyncExitStack() as stack:
        deps, _ = await build_deps(settings, stack)
        yield deps


def with_search(deps: Deps, search: Search, sleeps: Sleeps) -> Deps:
    return replace(deps, discovery=search.client(), sleep=sleeps)


async def test_no_match_is_zero_discovered_not_a_failure(deps: Deps) -> None:
    def no_match(request: httpx.Request, seen: int) -> httpx.Response:
        error = {"type": "not_found", "message": "No records were found matching your search"}
        return httpx.Response(404, json={"status": 404, "error": error})

    result = await daily_prospect_queue(
        with_search(deps, Search(no_match), Sleeps()), DailyRunRequest(), NoProgress()
    )
    assert (result.discovered, result.fanned_out) == (0, 0)
    run = await deps.ledger.summary(result.run_id)
    assert run is not None and run.state == "complete"


async def test_each_page_is_retried_on_its_own_honouring_retry_after(deps: Deps) -> None:
    def flaky(request: httpx.Request, seen: int) -> httpx.Response:
        number = page_number(request)
        if number == 2 and seen == 1:
            return httpx.Response(429, headers={"Retry-After": "7"})
        if number == 3 and seen <= 2:
            return httpx.Response(503)
        if number == 4 and seen == 1:
            return httpx.Response(200, content=b'{"status": 200, "data": [{"id": "c1", "na')
        return good_page(request)

    search, sleeps = Search(flaky), Sleeps()
    result = await daily_prospect_queue(
        with_search(deps, search, sleeps), DailyRunRequest(), NoProgress()
    )
    assert result.discovered == PAGES * PAGE_SIZE
    assert search.requests == [1, 2, 2, 3, 3, 3, 4, 4, 5]
    assert sleeps.waits[0] >= 7  # the far side's Retry-After
    assert len(sleeps.waits) == 4


async def test_a_job_retry_resumes_paging_from_the_last_good_page(deps: Deps) -> None:
    down = True

    def outage(request: httpx.Request, seen: int) -> httpx.Response:
        if page_number(request) == 4 and down:
            return httpx.Response(502)
        return good_page(request)

    search, sleeps = Search(outage), Sleeps()
    adjusted = with_search(deps, search, sleeps)
    with pytest.raises(TransientError):
        await daily_prospect_queue(adjusted, DailyRunRequest(), NoProgress())
    assert search.requests[:3] == [1, 2, 3] and set(search.requests[3:]) == {4}

    down = False
    search.requests.clear()
    result = await daily_prospect_queue(adjusted, DailyRunRequest(), NoProgress())
    assert search.requests == [4, 5]  # pages 1 to 3 were not read again
    assert result.discovered == PAGES * PAGE_SIZE


async def test_a_page_that_stays_malformed_ends_discovery_and_says_so(
    deps: Deps, redis: Redis
) -> None:
    def truncated(request: httpx.Request, seen: int) -> httpx.Response:
        if page_number(request) == 3:
            return httpx.Response(200, content=b'{"status": 200, "data": [{"id": "c8"')
        return good_page(request)

    search, sleeps = Search(truncated), Sleeps()
    result = await daily_prospect_queue(
        with_search(deps, search, sleeps), DailyRunRequest(), NoProgress()
    )
    assert result.discovered == 2 * PAGE_SIZE
    assert result.discovery_incomplete is not None
    assert result.discovery_incomplete.startswith("malformed page 3: ")
    assert 4 not in search.requests
    run = await deps.ledger.summary(result.run_id)
    assert run is not None and run.discovery_incomplete == result.discovery_incomplete
