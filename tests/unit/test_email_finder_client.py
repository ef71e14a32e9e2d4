"""The email finder client on mocked transports: the pick, the request, errors without the key."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jobs.clients.email_finder import EmailFinderClient
from jobs.errors import PermanentError, RateLimited, TransientError, UnreadableResponse
from jobs.models import Contact

KEY = "hunter-secret-0123"

Handler = Callable[[httpx.Request], httpx.Response]


def finder(handler: Handler, api_key: str | None = KEY) -> EmailFinderClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return EmailFinderClient(http, base_url="https://hunter.test/", api_key=api_key, timeout=3)


def answer(*emails: dict[str, Any]) -> Handler:
    body = {
        "data": {"domain": "acme.example", "organization": "Acme", "emails": list(emails)},
        "meta": {"results": len(emails), "limit": 10, "offset": 0},
    }
    return lambda request: httpx.Response(200, json=body)


def email(value: str, kind: str | None, confidence: int | None, **extra: object) -> dict[str, Any]:
    return {"value": value, "type": kind, "confidence": confidence, "sources": [], **extra}


async def test_sends_hunters_domain_search() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer()(request)

    await finder(handler).best_contact(" Acme.Example ")
    [request] = seen
    assert request.method == "GET"
    assert request.url.host == "hunter.test" and request.url.path == "/v2/domain-search"
    assert dict(request.url.params) == {"domain": "acme.example", "limit": "10", "api_key": KEY}


async def test_no_key_parameter_without_a_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer()(request)

    await finder(handler, api_key=None).best_contact("acme.example")
    assert "api_key" not in seen[0].url.params


async def test_a_named_person_beats_a_more_confident_role_address() -> None:
    handler = answer(
        email("info@acme.example", "generic", 99),
        email("bo@acme.example", "personal", 60),
        email(
            "Ann.Lee@Acme.example",
            "personal",
            80,
            first_name="Ann",
            last_name="Lee",
            position="CTO",
            seniority="executive",
        ),
    )
    contact = await finder(handler).best_contact("acme.example")
    assert contact == Contact(
        email="ann.lee@acme.example",
        first_name="Ann",
        last_name="Lee",
        position="CTO",
        confidence=80,
        source="email_finder",
    )


@pytest.mark.parametrize(
    ("emails", "picked"),
    [
        # only role addresses (or types we do not know): the most confident one
        ([email("info@a.example", "generic", 50), email("sales@a.example", None, 70)], "sales@"),
        ([email("info@a.example", "generic", 50), email("team@a.example", "group", 60)], "team@"),
        # equal confidence: the address decides, not the provider's order
        ([email("zed@a.example", "personal", 70), email("amy@a.example", "personal", 70)], "amy@"),
        # the provider verified it undeliverable: the next best instead
        (
            [
                email("ann@a.example", "personal", 95, verification={"status": "invalid"}),
                email("bo@a.example", "personal", 50, verification={"status": "valid"}),
            ],
            "bo@",
        ),
        # a missing confidence counts as zero, not as an error
        ([email("ann@a.example", "personal", None), email("bo@a.example", "personal", 1)], "bo@"),
        ([email("not-an-address", "personal", 99), email("bo@a.example", "generic", 1)], "bo@"),
    ],
)
async def test_the_pick(emails: list[dict[str, Any]], picked: str) -> None:
    contact = await finder(answer(*emails)).best_contact("a.example")
    assert contact is not None and contact.email.startswith(picked)


async def test_none_when_there_is_nobody_to_write_to() -> None:
    assert await finder(answer()).best_contact("quiet.example") is None
    no_list = finder(lambda r: httpx.Response(200, json={"data": {"domain": "q.example"}}))
    assert await no_list.best_contact("q.example") is None
    bounced = answer(email("ann@a.example", "personal", 90, verification={"status": "invalid"}))
    assert await finder(bounced).best_contact("a.example") is None


async def test_an_empty_domain_is_refused_without_a_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    with pytest.raises(PermanentError, match="no domain"):
        await finder(handler).best_contact("  ")


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (429, {"Retry-After": "30"}, RateLimited, 30.0),
        (503, {}, TransientError, None),
        (401, {}, PermanentError, None),
        (404, {}, PermanentError, None),
        (451, {}, PermanentError, None),
    ],
)
async def test_statuses_map_to_errors_without_the_key(
    status: int, headers: dict[str, str], error: type, retry_after: float | None
) -> None:
    body = {"errors": [{"id": "x", "code": status, "details": f"bad key {KEY}"}]}
    with pytest.raises(error) as caught:
        await finder(lambda r: httpx.Response(status, headers=headers, json=body)).best_contact(
            "acme.example"
        )
    assert type(caught.value) is error
    assert getattr(caught.value, "retry_after", None) == retry_after
    assert str(caught.value) == f"email_finder: HTTP {status} from GET /v2/domain-search"


async def test_a_transport_error_quoting_the_url_is_masked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    with pytest.raises(TransientError) as caught:
        await finder(handler).best_contact("acme.example")
    assert type(caught.value) is TransientError
    assert KEY not in str(caught.value) and "api_key=***" in str(caught.value)
    # Tracebacks print the cause chain too: it must not show the original text.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_timeouts_are_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(TransientError, match="timed out") as caught:
        await finder(handler).best_contact("acme.example")
    assert KEY not in str(caught.value)


async def test_a_maintenance_page_is_transient() -> None:
    page = httpx.Response(200, content=b"<html>maintenance</html>")
    with pytest.raises(UnreadableResponse, match=r"^email_finder: unreadable response") as caught:
        await finder(lambda r: page).best_contact("acme.example")
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"emails": []}),
        httpx.Response(200, json={"data": {"emails": [{"type": "personal"}]}}),
        httpx.Response(200, json={"data": {"emails": [{"value": "a@b", "confidence": "hi"}]}}),
    ],
)
async def test_a_malformed_answer_is_permanent(response: httpx.Response) -> None:
    with pytest.raises(PermanentError, match=r"^email_finder: malformed response") as caught:
        await finder(lambda r: response).best_contact("acme.example")
    assert KEY not in str(caught.value)
