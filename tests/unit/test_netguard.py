"""The address guard, on addresses alone and on a fake network that never opens a socket."""

import ipaddress

import httpcore
import httpx
import pytest

from jobs.errors import PermanentError
from jobs.web.netguard import (
    AddressRefused,
    GuardedNetworkBackend,
    guarded_transport,
    refusal_reason,
)
from tests.support.fake_network import FakeBackend

REFUSED = [
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "169.254.169.254",
    "169.254.170.2",
    "100.100.100.200",
    "168.63.129.16",
    "fe80::1",
    "fe80::1%eth0",
    "fd00:ec2::254",
    "fd12:3456::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:a00:1::1",  # 6to4 around 10.0.0.1
    "2002:7f00:1::",  # 6to4 around 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    "64:ff9b:1::1",
    "2001::1",  # Teredo
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 - an address the guard must refuse; nothing binds to it
    "::",
    "224.0.0.1",
    "ff02::1",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.9",
    "2001:db8::1",
    "198.18.0.1",
    "100::1",
    "4000::1",  # outside 2000::/3
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "2606:4700::1111",
    "2a00:1450:4001:81b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 around 8.8.8.8: what DNS64 hands an IPv6-only pod
]


@pytest.mark.parametrize("address", REFUSED)
def test_refused_addresses(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_allowed(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_reasons_name_the_range() -> None:
    assert refusal_reason(ipaddress.ip_address("169.254.169.254")) == "cloud metadata address"
    assert refusal_reason(ipaddress.ip_address("100.64.0.1")) == (
        "shared address space (carrier-grade NAT)"
    )
    assert refusal_reason(ipaddress.ip_address("::ffff:10.0.0.1")) == (
        "private address (IPv4-mapped form)"
    )


# --- a network that records and never connects ---------------------------------------------


class FakeResolver:
    def __init__(self, *answers: list[str]) -> None:
        self._answers = list(answers)
        self.asked: list[tuple[str, int]] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]


class FailingResolver:
    async def resolve(self, host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")


async def test_private_answer_is_refused_before_any_connect() -> None:
    inner = FakeBackend()
    guard = GuardedNetworkBackend(inner, resolver=FakeResolver(["10.1.2.3"]))
    with pytest.raises(AddressRefused, match=r"intranet\.acme\.example.*10\.1\.2\.3.*private"):
        await guard.connect_tcp("intranet.acme.example", 443)
    assert inner.connects == []


async def test_one_bad_answer_refuses_the_host() -> None:
    inner = FakeBackend()
    guard = GuardedNetworkBackend(inner, resolver=FakeResolver(["8.8.8.8", "127.0.0.1"]))
    with pytest.raises(AddressRefused):
        await guard.connect_tcp("mixed.acme.example", 443)
    assert inner.connects == []


async def test_public_answer_connects_to_the_checked_ip() -> None:
    inner = FakeBackend()
    resolver = FakeResolver(["2606:4700::1111", "1.1.1.1"])
    guard = GuardedNetworkBackend(inner, resolver=resolver)
    await guard.connect_tcp("acme.example", 443)
    assert resolver.asked == [("acme.example", 443)]
    assert inner.connects == [("2606:4700::1111", 443)]


async def test_next_address_is_tried_when_one_fails() -> None:
    inner = FakeBackend(fail=True)
    guard = GuardedNetworkBackend(inner, resolver=FakeResolver(["8.8.8.8", "8.8.4.4"]))
    with pytest.raises(httpcore.ConnectError):
        await guard.connect_tcp("acme.example", 80)
    assert inner.connects == [("8.8.8.8", 80), ("8.8.4.4", 80)]


async def test_literal_ip_host_is_checked_without_resolving() -> None:
    inner = FakeBackend()
    resolver = FakeResolver(["8.8.8.8"])
    guard = GuardedNetworkBackend(inner, resolver=resolver)
    with pytest.raises(AddressRefused):
        await guard.connect_tcp("169.254.169.254", 80)
    await guard.connect_tcp("8.8.8.8", 80)
    assert resolver.asked == []
    assert inner.connects == [("8.8.8.8", 80)]


async def test_each_connection_is_checked_again() -> None:
    """DNS rebinding: a name that was public on the first lookup is private on the second."""
    inner = FakeBackend()
    guard = GuardedNetworkBackend(inner, resolver=FakeResolver(["8.8.8.8"], ["127.0.0.1"]))
    await guard.connect_tcp("rebind.acme.example", 80)
    with pytest.raises(AddressRefused):
        await guard.connect_tcp("rebind.acme.example", 80)
    assert inner.connects == [("8.8.8.8", 80)]


async def test_unresolvable_host_is_a_connect_error() -> None:
    guard = GuardedNetworkBackend(FakeBackend(), resolver=FailingResolver())
    with pytest.raises(httpcore.ConnectError, match="cannot resolve"):
        await guard.connect_tcp("nowhere.acme.example", 443)


async def test_unix_sockets_are_refused() -> None:
    guard = GuardedNetworkBackend(FakeBackend(), resolver=FakeResolver(["8.8.8.8"]))
    with pytest.raises(AddressRefused):
        await guard.connect_unix_socket("/var/run/docker.sock")


async def test_allow_private_lets_local_through_but_never_metadata() -> None:
    inner = FakeBackend()
    guard = GuardedNetworkBackend(
        inner, resolver=FakeResolver(["127.0.0.1"], ["fd00:ec2::254"]), allow_private=True
    )
    await guard.connect_tcp("localhost", 80)
    with pytest.raises(AddressRefused, match="metadata"):
        await guard.connect_tcp("metadata.acme.example", 80)
    with pytest.raises(AddressRefused, match="metadata"):
        await guard.connect_tcp("169.254.169.254", 80)
    assert inner.connects == [("127.0.0.1", 80)]


# --- through httpx, end to end --------------------------------------------------------------


async def test_refusal_surfaces_through_httpx_as_itself() -> None:
    inner = FakeBackend()
    transport = guarded_transport(resolver=FakeResolver(["192.168.0.10"]), backend=inner)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(AddressRefused) as caught:
            await client.get("https://router.acme.example/")
    # Not an httpx.ConnectError: the caller can tell a refusal from a network failure.
    assert isinstance(caught.value, PermanentError)
    assert not isinstance(caught.value, httpx.HTTPError)
    assert caught.value.host == "router.acme.example"
    assert inner.connects == []


async def test_guarded_transport_connects_by_ip_and_keeps_the_tls_name() -> None:
    inner = FakeBackend()
    resolver = FakeResolver(["8.8.8.8"], ["10.0.0.5"])
    transport = guarded_transport(resolver=resolver, backend=inner)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("https://acme.example/about")
        assert response.status_code == 200
        assert response.text == "hi"
        # The server closed the connection, so the next request resolves and checks again.
        with pytest.raises(AddressRefused):
            await client.get("https://acme.example/about")
    assert inner.connects == [("8.8.8.8", 443)]
    stream = inner.streams[0]
    assert stream.server_hostname == "acme.example"
    assert stream.written.startswith(b"GET /about HTTP/1.1\r\n")
    assert b"\r\nHost: acme.example\r\n" in stream.written


async def test_connect_failure_stays_an_httpx_connect_error() -> None:
    backend = FakeBackend(fail=True)
    transport = guarded_transport(resolver=FakeResolver(["8.8.8.8"]), backend=backend)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://acme.example/")


async def test_default_transport_builds_without_touching_the_network() -> None:
    transport = guarded_transport(limits=httpx.Limits(max_connections=5))
    assert isinstance(transport, httpx.AsyncBaseTransport)
    await transport.aclose()
