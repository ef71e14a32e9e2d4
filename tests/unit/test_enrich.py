"""Enrichment keeps the email finder's error type, so the runtime can classify it."""

import httpx
import pytest

from jobs.clients.email_finder import EmailFinderClient
from jobs.errors import PermanentError, RateLimited, TransientError, most_severe
from jobs.models import Company
from jobs.prospecting.enrich import enrich
from jobs.web.fetch import WebsiteFetcher

ACME = Company(id="c1", name="Acme", domain="acme.example", website="https://acme.example/")


def site(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, html="<html><head><title>Acme</title></head></html>")


def finder(status: int, headers: dict[str, str] | None = None) -> EmailFinderClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers or {}, json={"errors": []})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return EmailFinderClient(http, base_url="https://hunter.test", api_key="k", timeout=3)


def fetcher() -> WebsiteFetcher:
    return WebsiteFetcher(httpx.AsyncClient(transport=httpx.MockTransport(site)), timeout=3)


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (401, {}, PermanentError, None),
        (429, {"Retry-After": "120"}, RateLimited, 120.0),
        (503, {}, TransientError, None),
    ],
)
async def test_the_email_finders_error_reaches_the_caller_with_its_type(
    status: int, headers: dict[str, str], error: type[Exception], retry_after: float | None
) -> None:
    with pytest.raises(error) as caught:
        await enrich(ACME, fetcher=fetcher(), email_finder=finder(status, headers))
    assert type(caught.value) is error
    assert getattr(caught.value, "retry_after", None) == retry_after


def test_most_severe_prefers_a_permanent_error() -> None:
    permanent = PermanentError("401")
    group = ExceptionGroup("g", [RateLimited("429", retry_after=5), permanent])
    assert most_severe(group) is permanent


def test_most_severe_keeps_the_longest_retry_after_among_transients() -> None:
    slow = RateLimited("429", retry_after=120)
    group = ExceptionGroup(
        "g",
        [TransientError("503"), ExceptionGroup("inner", [slow]), RateLimited("x", retry_after=3)],
    )
    assert most_severe(group) is slow


def test_most_severe_ranks_an_unexpected_error_above_a_transient_one() -> None:
    bug = KeyError("x")
    assert most_severe(ExceptionGroup("g", [TransientError("t"), bug])) is bug
    interrupt = KeyboardInterrupt()
    group = BaseExceptionGroup("g", [PermanentError("p"), interrupt])
    assert most_severe(group) is interrupt


def test_most_severe_of_a_plain_error_is_itself() -> None:
    error = TransientError("t")
    assert most_severe(error) is error


async def test_the_raised_error_keeps_its_own_cause() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refused))
    email_finder = EmailFinderClient(http, base_url="https://hunter.test", api_key="k", timeout=3)
    with pytest.raises(TransientError) as caught:
        await enrich(ACME, fetcher=fetcher(), email_finder=email_finder)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
