"""The fake provider server: real loopback HTTP, the real clients on top, faults on demand."""

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from jobs.clients.discovery import CompanySearchClient, icp_query
from jobs.clients.email_finder import EmailFinderClient
from jobs.clients.llm import ChatClient, ChatMessage
from jobs.clients.standins import (
    DISCOVERY_BASE_URL,
    EMAIL_FINDER_BASE_URL,
    SampleData,
    load_sample_data,
    sample_transport,
)
from jobs.errors import (
    JobError,
    MalformedResponse,
    RateLimited,
    TransientError,
    UnreadableResponse,
)
from jobs.outreach.drafting import parse_answer
from jobs.prospecting.icp import IcpProfile
from settings import load_settings
from tests.support.fake_providers import FakeProviders
from tests.support.far_end import FarEnd, Served, max_in_window
from tests.support.faults import FaultPlan, Scripted, decide
from tests.support.paging import discover_all

DATA = load_sample_data()
QUERY = icp_query(IcpProfile().industries, IcpProfile().countries)
DOMAINS = [company.domain for company in DATA.companies]


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    with FakeProviders(seed=11) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def finder(http: httpx.AsyncClient, fake: FakeProviders, timeout: float = 5) -> EmailFinderClient:
    return EmailFinderClient(http, base_url=fake.url, api_key=None, timeout=timeout)


def chat(http: httpx.AsyncClient, fake: FakeProviders) -> ChatClient:
    return ChatClient(http, base_url=fake.url, api_key=None, model="fake-1", timeout=5)


async def test_discovery_pages_serve_what_the_offline_stand_in_serves(
    fake: FakeProviders, http: httpx.AsyncClient
) -> None:
    search = CompanySearchClient(http, base_url=fake.url, api_key=None, timeout=5)
    async with httpx.AsyncClient(transport=sample_transport(DATA)) as offline_http:
        offline = CompanySearchClient(
            offline_http, base_url=DISCOVERY_BASE_URL, api_key=None, timeout=5
        )
        expected = await discover_all(offline, QUERY, limit=120, page_size=25)

    found = await discover_all(search, QUERY, limit=120, page_size=25)

    assert found == expected and len(found) == 120
    served = fake.far_end.snapshot("discovery")
    assert [s.key for s in served] == [f"page:{n}" for n in range(5)]
    assert {(s.status, s.fault, s.call) for s in served} == {(200, "ok", 1)}


async def test_no_match_is_a_404_as_people_data_labs_answers(http: httpx.AsyncClient) -> None:
    with FakeProviders(data=SampleData(companies=())) as fake:
        answer = await http.post(f"{fake.url}/v5/company/search", json={"query": QUERY, "size": 5})
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "not_found"


async def test_the_email_finder_knows_the_sample_contacts(
    fake: FakeProviders, http: httpx.AsyncClient
) -> None:
    domain = next(c.domain for c in DATA.companies if c.site.contacts)
    async with httpx.AsyncClient(transport=sample_transport(DATA)) as offline_http:
        offline = EmailFinderClient(
            offline_http, base_url=EMAIL_FINDER_BASE_URL, api_key=None, timeout=5
        )
        expected = await offline.best_contact(domain)

    assert expected is not None
    assert await finder(http, fake).best_contact(domain.upper()) == expected
    assert fake.far_end.counts("email_finder") == {domain: 1}


async def test_the_chat_answer_is_a_draft_the_writer_parses(
    fake: FakeProviders, http: httpx.AsyncClient
) -> None:
    prompt = (
        "Write the email.\n\nProspect company: Acme Labs (acme.example)\nRecipient first name: Dana"
    )
    answer = await chat(http, fake).complete([ChatMessage(role="user", content=prompt)])

    subject, body = parse_answer(answer)
    assert subject == "A quick idea for Acme Labs"
    assert body.startswith("Hi Dana,")
    assert fake.far_end.counts("llm") == {"acme.example": 1}


async def test_a_script_fails_the_first_calls_for_one_key_only(
    fake: FakeProviders, http: httpx.AsyncClient
) -> None:
    flaky, steady = DOMAINS[0], DOMAINS[1]
    fake.configure(
        "email_finder", FaultPlan(script=(Scripted(fault="server_error", key=flaky, first=2),))
    )
    client = finder(http, fake)

    for _ in range(2):
        with pytest.raises(TransientError, match="HTTP 503"):
            await client.domain_search(flaky)
    await client.domain_search(flaky)
    await client.domain_search(steady)

    served = fake.far_end.snapshot("email_finder")
    assert [(s.key, s.call, s.fault, s.status) for s in served] == [
        (flaky, 1, "server_error", 503),
        (flaky, 2, "server_error", 503),
        (flaky, 3, "ok", 200),
        (steady, 1, "ok", 200),
    ]
    assert fake.far_end.describe() == ("email_finder: 4 requests for 2 keys (ok 2, server_error 2)")


async def test_a_429_carries_retry_after_and_an_early_retry_is_caught(
    fake: FakeProviders, http: httpx.AsyncClient
) -> None:
    domain = DOMAINS[2]
    rule = Scripted(fault="rate_limited", key=domain, first=1)
    fake.configure("email_finder", FaultPlan(retry_after_s=30, script=(rule,)))
    client = finder(http, fake)

    with pytest.raises(RateLimited) as limited:
        await client.domain_search(domain)
    assert limited.value.retry_after == 30.0
    await client.domain_search(domain)  # at once, not 30 s later
    await client.domain_search(DOMAINS[3])  # another key is not held to it

    [early] = fake.far_end.early_retries()
    assert (early.limited.call, early.early.call, early.early.key) == (1, 2, domain)
    assert 0 <= early.waited_s < 30


async def test_a_timeout_holds_past_the_client_and_stop_releases_it(
    http: httpx.AsyncClient,
) -> None:
    with FakeProviders() as fake:
        fake.configure("llm", FaultPlan(timeout=1.0, hold_s=0.5))
        with pytest.raises(TransientError, match="timed out"):
            await ChatClient(
                http, base_url=fake.url, api_key=None, model="m", timeout=0.1
            ).complete([ChatMessage(role="user", content="Prospect company: X (x.example)")])
        # The handler records the call once its hold is over, on the server's thread.
        while not fake.far_end.snapshot("llm"):  # noqa: ASYNC110 - written by another thread
            await asyncio.sleep(0.02)
    [served] = fake.far_end.snapshot("llm")
    assert (served.fault, served.status, served.key) == ("timeout", 504, "x.example")
    assert served.answered - served.arrived >= 0.5


@pytest.mark.parametrize(
    ("fault", "error", "says"),
    [
        ("truncated", UnreadableResponse, "unreadable response"),
        ("html", UnreadableResponse, "unreadable response"),
        ("wrong_shape", MalformedResponse, "malformed response"),
    ],
)
async def test_bodies_that_are_not_json_are_transient_and_wrong_json_permanent(
    fault: str, error: type[JobError], says: str, fake: FakeProviders, http: httpx.AsyncClient
) -> None:
    rule = Scripted.model_validate({"fault": fault, "first": 1})
    fake.configure("discovery", FaultPlan(script=(rule,)))
    search = CompanySearchClient(http, base_url=fake.url, api_key=None, timeout=5)
    with pytest.raises(error, match=says):
        await search.search_page(QUERY, 10)
    page = await search.search_page(QUERY, 10)  # page:0's second call is served whole
    assert len(page.data) == 10
    assert [s.fault for s in fake.far_end.snapshot("discovery")] == [fault, "ok"]


async def test_latency_is_added_to_every_answer(
    fake: FakeProviders, http: httpx.AsyncClient
) -> None:
    fake.configure("email_finder", FaultPlan(latency_s=0.2))
    await asyncio.gather(*(finder(http, fake).domain_search(d) for d in DOMAINS[:3]))
    served = fake.far_end.snapshot("email_finder")
    assert len(served) == 3
    assert all(s.answered - s.arrived >= 0.2 for s in served)


@pytest.mark.slow
async def test_faults_are_seeded_per_key_and_call_whatever_the_order(
    http: httpx.AsyncClient,
) -> None:
    plan = FaultPlan(server_error=0.2, rate_limited=0.1, malformed=0.1, retry_after_s=0)

    async def run(seed: int, domains: list[str]) -> dict[tuple[str, int], str]:
        with FakeProviders({"email_finder": plan}, seed=seed) as fake:
            url = f"{fake.url}/v2/domain-search"
            for _ in range(2):
                await asyncio.gather(*(http.get(url, params={"domain": d}) for d in domains))
            return {(s.key, s.call): s.fault for s in fake.far_end.snapshot()}

    forward = await run(5, DOMAINS[:40])
    backward = await run(5, DOMAINS[:40][::-1])
    other_seed = await run(6, DOMAINS[:40])

    assert len(forward) == 80
    assert forward == backward
    assert forward != other_seed
    assert {"ok", "server_error", "rate_limited"} <= set(forward.values())


def test_rates_are_drawn_in_their_shares() -> None:
    plan = FaultPlan(
        server_error=0.2, rate_limited=0.1, timeout=0.05, malformed=0.1, unreadable=0.1
    )
    faults = [
        decide(plan, seed=1, endpoint="llm", key=f"k{n}", key_call=1, endpoint_call=n)
        for n in range(10_000)
    ]
    shares = {kind: faults.count(kind) / len(faults) for kind in set(faults)}
    assert shares["server_error"] == pytest.approx(0.2, abs=0.02)
    assert shares["rate_limited"] == pytest.approx(0.1, abs=0.02)
    assert shares["timeout"] == pytest.approx(0.05, abs=0.01)
    assert shares["truncated"] == pytest.approx(0.1, abs=0.015)
    assert shares["html"] == pytest.approx(0.05, abs=0.01)
    assert shares["wrong_shape"] == pytest.approx(0.05, abs=0.01)
    assert shares["ok"] == pytest.approx(0.45, abs=0.02)


def test_scripts_count_per_key_or_across_the_endpoint() -> None:
    per_key = FaultPlan(script=(Scripted(fault="timeout", first=1),))
    endpoint_wide = FaultPlan(script=(Scripted(fault="timeout", first=2, after=1, per_key=False),))

    def fault(plan: FaultPlan, key_call: int, endpoint_call: int) -> str:
        return decide(
            plan, seed=0, endpoint="llm", key="k", key_call=key_call, endpoint_call=endpoint_call
        )

    assert [fault(per_key, k, 9) for k in (1, 2)] == ["timeout", "ok"]
    assert [fault(endpoint_wide, 1, e) for e in (1, 2, 3, 4)] == ["ok", "timeout", "timeout", "ok"]


def test_a_plan_cannot_fault_more_than_every_call() -> None:
    with pytest.raises(ValueError, match="more than 1"):
        FaultPlan(server_error=0.6, rate_limited=0.5)


def served(
    seq: int, key: str, arrived: float, fault: str = "ok", retry: int | None = None
) -> Served:
    return Served(
        seq=seq,
        endpoint="email_finder",
        key=key,
        call=seq,
        fault=fault,  # type: ignore[arg-type]
        status=429 if fault == "rate_limited" else 200,
        retry_after_s=retry,
        arrived=arrived,
        answered=arrived + 0.01,
    )


def test_early_retries_ignore_requests_already_in_flight_and_waits_long_enough() -> None:
    far_end = FarEnd()
    for record in (
        served(1, "a", 0.00, "rate_limited", retry=2),
        served(2, "a", 0.005),  # sent before the 429 went out
        served(3, "b", 0.50),  # another key
        served(4, "a", 2.02),  # waited the 2 s
        served(5, "c", 10.0, "rate_limited", retry=2),
        served(6, "c", 11.0),  # 1 s later: too soon
    ):
        far_end.record(record)
    [early] = far_end.early_retries()
    assert (early.limited.seq, early.early.seq) == (5, 6)
    assert early.waited_s == pytest.approx(0.99)


def test_max_in_window_and_counts() -> None:
    far_end = FarEnd()
    for seq, t in enumerate([0.0, 0.1, 0.2, 1.5, 1.6, 1.7, 1.8, 3.0], start=1):
        far_end.record(served(seq, "a" if seq % 2 else "b", t))
    assert far_end.max_in_window(1.0) == 4  # 1.5 to 1.8
    assert far_end.max_in_window(1.0, key="a") == 2
    assert far_end.counts() == {"a": 4, "b": 4}
    assert max_in_window([0.0, 1.0, 2.0], 1.0) == 1
    assert max_in_window([], 1.0) == 0


def test_the_env_points_the_settings_at_the_server_without_keys(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    for service in (settings.discovery, settings.email_finder, settings.llm):
        assert str(service.base_url).rstrip("/") == fake.url
        assert service.api_key is None
    assert set(fake.env("llm")) == {"PW_LLM__BASE_URL"}
    assert fake.env("email_finder", timeout_s=0.5) == {
        "PW_EMAIL_FINDER__BASE_URL": fake.url,
        "PW_EMAIL_FINDER__TIMEOUT_S": "0.5",
    }


async def test_an_unknown_route_is_a_404_and_not_counted(
    fake: FakeProviders, http: httpx.AsyncClient
) -> None:
    answer = await http.get(f"{fake.url}/v3/nothing")
    assert answer.status_code == 404
    assert fake.far_end.snapshot() == ()
