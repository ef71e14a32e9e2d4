"""Fencing's local side: how long a worker may act for a job, and the check before each call."""

import asyncio

import httpx
import pytest

from jobs.errors import PermanentError, most_severe
from jobs.fencing import CURRENT, Fence, JobLost, check_fence, fence_key_and_token
from jobs.web.netguard import transport_on
from tests.support.fake_network import FakeBackend
from worker.runtime.fencing import FencedNetworkBackend, FencedTransport, Ownership, worker_id


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ownership(clock: Clock) -> Ownership:
    return Ownership("w1", 3.0, marker_key=lambda job_id: f"marker:{job_id}", clock=clock)


def test_a_job_is_this_workers_until_its_last_confirmation_plus_the_marker_life() -> None:
    clock = Clock()
    owned = ownership(clock)
    first = owned.new_token()
    assert (first, owned.new_token()) == ("w1:1", "w1:2")  # the epoch counts up
    owned.claimed("a", first, sent_at=100.0)
    clock.now = 102.9
    owned.check("a")
    owned.renewed(102.0, kept=["a"], taken=[])
    clock.now = 104.9  # past the claim's life, within the renewal's
    owned.check("a")
    clock.now = 105.0  # a stall: nothing confirmed the marker for its whole life
    with pytest.raises(JobLost, match="no renewal reached Redis"):
        owned.check("a")
    # Lost for good: a renewal sent later does not give it back, nor does it renew it.
    owned.renewed(105.0, kept=["a"], taken=[])
    with pytest.raises(JobLost):
        owned.check("a")
    assert owned.tokens() == {} and owned.lost_total == 1


def test_a_marker_taken_by_another_worker_loses_the_job_at_its_next_check() -> None:
    clock = Clock()
    owned = ownership(clock)
    owned.claimed("a", "w1:1", sent_at=100.0)
    owned.claimed("b", "w1:2", sent_at=100.0)
    owned.renewed(100.5, kept=["b"], taken=["a", "gone"])
    with pytest.raises(JobLost, match="another worker's token"):
        owned.check("a")
    owned.check("b")
    assert owned.tokens() == {"b": "w1:2"}
    assert owned.token("a") == "w1:1"  # still known: its finish must be fenced with it


def test_release_forgets_only_the_delivery_it_names() -> None:
    owned = ownership(Clock())
    owned.claimed("a", "w1:2", sent_at=100.0)
    owned.released("a", "w1:1")  # an older delivery's end
    assert owned.token("a") == "w1:2"
    owned.released("a", "w1:2")
    assert owned.token("a") is None and owned.fence("a") is None
    with pytest.raises(JobLost, match="not claimed"):
        owned.check("a")


def test_a_fence_checks_its_own_job() -> None:
    clock = Clock()
    owned = ownership(clock)
    owned.claimed("a", "w1:1", sent_at=100.0)
    fence = owned.fence("a")
    assert fence is not None
    assert (fence.key, fence.token) == ("marker:a", "w1:1")
    fence.check()
    clock.now = 200.0
    with pytest.raises(JobLost):
        fence.check()


def test_outside_a_job_nothing_is_checked() -> None:
    check_fence()
    assert fence_key_and_token("placeholder") == ("placeholder", "")


def lost() -> None:
    raise JobLost("taken")


async def test_a_lost_job_makes_no_http_request() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=FencedTransport(httpx.MockTransport(handler))) as http:
        assert (await http.get("http://provider.test/")).status_code == 200  # no job: no fence
        fenced = CURRENT.set(Fence("marker:a", "w1:1", lost))
        try:
            with pytest.raises(JobLost):
                await http.get("http://provider.test/")
            with pytest.raises(JobLost):
                fence_key_and_token("placeholder")  # a commit step is refused before Redis
        finally:
            CURRENT.reset(fenced)
    assert len(requests) == 1


async def test_the_fence_is_the_tasks_own() -> None:
    """A job's subtasks see its fence; another job's task does not."""

    async def seen() -> Fence | None:
        return CURRENT.get()

    fence = Fence("marker:a", "w1:1", lambda: None)
    fenced = CURRENT.set(fence)
    try:
        assert await asyncio.create_task(seen()) is fence
        assert fence_key_and_token("placeholder") == ("marker:a", "w1:1")
    finally:
        CURRENT.reset(fenced)
    assert await asyncio.create_task(seen()) is None


def test_a_lost_job_outranks_every_other_error_but_cancellation() -> None:
    group = ExceptionGroup("both", [PermanentError("404"), JobLost("taken")])
    assert isinstance(most_severe(group), JobLost)
    cancelled = BaseExceptionGroup("all", [JobLost("taken"), asyncio.CancelledError()])
    assert isinstance(most_severe(cancelled), asyncio.CancelledError)


def test_worker_ids_are_never_reused() -> None:
    assert worker_id() != worker_id()


async def test_a_job_lost_after_its_request_was_checked_writes_nothing() -> None:
    """A stall between the transport's check and the write (a connection opening, a pool slot
    awaited) is caught as the bytes are about to leave: the connection checks again."""
    network = FakeBackend()
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(
        transport=transport_on(FencedNetworkBackend(network), limits)
    ) as http:
        assert (await http.get("http://provider.test/")).status_code == 200  # no job: no fence
        sent = b"".join(stream.written for stream in network.streams)
        assert sent  # the first request went out
        fenced = CURRENT.set(Fence("marker:a", "w1:1", lost))
        try:
            with pytest.raises(JobLost):
                await http.get("http://provider.test/again")
        finally:
            CURRENT.reset(fenced)
    assert b"".join(stream.written for stream in network.streams) == sent  # it never left


def test_a_renewal_does_not_lose_a_delivery_claimed_after_it_read_the_tokens() -> None:
    """The renewal reads the tokens, then Redis: a delivery that ended meanwhile (its marker
    deleted) and a claim of the same job by this worker (a new token) must not make the new
    delivery lost. With a type paused, jobs deferred and claimed again many times a second, a
    worker lost its own jobs this way."""
    clock = Clock()
    owned = ownership(clock)
    owned.claimed("a", "w1:1", sent_at=100.0)
    checked = owned.tokens()  # the renewal's read
    owned.released("a", "w1:1")  # that delivery ended: its marker is gone
    owned.claimed("a", "w1:2", sent_at=100.2)  # claimed again
    owned.renewed(100.1, kept=[], taken=["a"], checked=checked)
    owned.check("a")
    assert owned.tokens() == {"a": "w1:2"} and owned.lost_total == 0
