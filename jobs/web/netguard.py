"""The address guard: prospect websites are untrusted, so we connect only to public unicast hosts.

The check sits in the network backend, below httpx, so it sees every connection a request
makes (redirects included) and connects to the very address it checked: the hostname is
resolved once, here, and never again, so DNS cannot rebind between the check and the connect.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Protocol

import httpcore
import httpx

from jobs.errors import PermanentError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_v4 = ipaddress.IPv4Network
_v6 = ipaddress.IPv6Network

# Instance metadata and platform endpoints: credentials live behind these, so they are refused
# even when private addresses are allowed. Azure's wireserver is a public-looking address.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI, DigitalOcean, OpenStack
        "169.254.169.253",  # AWS VPC DNS
        "169.254.169.123",  # AWS time sync
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS pod identity agent
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wireserver
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity agent over IPv6
        "fd20:ce::254",  # GCP metadata over IPv6
    )
)

# First match wins, so the narrow ranges come before the wide ones that hold them.
_REFUSED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_v4("0.0.0.0/8"), "unspecified ('this network') address"),
    (_v4("10.0.0.0/8"), "private address"),
    (_v4("100.64.0.0/10"), "shared address space (carrier-grade NAT)"),
    (_v4("127.0.0.0/8"), "loopback address"),
    (_v4("169.254.0.0/16"), "link-local address"),
    (_v4("172.16.0.0/12"), "private address"),
    (_v4("192.0.0.0/24"), "IETF protocol assignment"),
    (_v4("192.0.2.0/24"), "documentation address"),
    (_v4("192.88.99.0/24"), "6to4 relay anycast"),
    (_v4("192.168.0.0/16"), "private address"),
    (_v4("198.18.0.0/15"), "benchmarking address"),
    (_v4("198.51.100.0/24"), "documentation address"),
    (_v4("203.0.113.0/24"), "documentation address"),
    (_v4("224.0.0.0/4"), "multicast address"),
    (_v4("240.0.0.0/4"), "reserved address"),  # includes the broadcast 255.255.255.255
)

_REFUSED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_v6("::/128"), "unspecified address"),
    (_v6("::1/128"), "loopback address"),
    (_v6("64:ff9b:1::/48"), "local-use NAT64 address"),
    (_v6("100::/64"), "discard-only address"),
    (_v6("2001::/32"), "Teredo tunnel address"),
    (_v6("2001:db8::/32"), "documentation address"),
    (_v6("2001::/23"), "IETF protocol assignment"),
    (_v6("3fff::/20"), "documentation address"),
    (_v6("5f00::/16"), "segment routing address"),
    (_v6("fc00::/7"), "private (unique local) address"),
    (_v6("fe80::/10"), "link-local address"),
    (_v6("fec0::/10"), "site-local address"),
    (_v6("ff00::/8"), "multicast address"),
)

# Only 2000::/3 is allocated for global unicast; everything else (IPv4-compatible ::/96,
# unassigned space) is refused by this catch-all once the embedded forms are unwrapped.
_GLOBAL_UNICAST_V6 = _v6("2000::/3")
_NAT64 = _v6("64:ff9b::/96")

# What `allow_private` lets through: a developer's own machine and network, nothing more.
_LOCAL_NETWORKS = (
    _v4("10.0.0.0/8"),
    _v4("127.0.0.0/8"),
    _v4("172.16.0.0/12"),
    _v4("192.168.0.0/16"),
    _v6("::1/128"),
    _v6("fc00::/7"),
)


class AddressRefused(PermanentError):
    """The guard would not connect: the host is, or resolves to, a non-public address."""

    def __init__(self, message: str, *, host: str | None = None, address: str | None = None):
        super().__init__(message)
        self.host = host
        self.address = address


def _unwrap(ip: IPAddress) -> tuple[IPAddress, str | None]:
    """The IPv4 address inside an IPv6 form that carries one, and the form's name."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped, "IPv4-mapped"
        if ip.sixtofour is not None:
            return ip.sixtofour, "6to4"
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    return ip, None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why the guard refuses `ip`, or None when it is globally routable unicast.

    Explicit tables rather than `ip.is_global`: Python 3.11's flags call ::ffff:8.8.8.8 and a
    6to4 wrapping of 10.0.0.1 global, and they change between patch releases.
    """
    # A scope id (fe80::1%eth0) is not part of the address.
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    inner, form = _unwrap(ip)
    reason = _plain_reason(inner)
    if reason is not None and form is not None:
        return f"{reason} ({form} form)"
    return reason


def _plain_reason(ip: IPAddress) -> str | None:
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    if isinstance(ip, ipaddress.IPv4Address):
        return next((why for net, why in _REFUSED_V4 if ip in net), None)
    for net, why in _REFUSED_V6:
        if ip in net:
            return why
    if ip not in _GLOBAL_UNICAST_V6:
        return "reserved address (not IPv6 global unicast)"
    return None


def _is_local(ip: IPAddress) -> bool:
    inner, _ = _unwrap(ip)
    return inner not in METADATA_ADDRESSES and any(inner in net for net in _LOCAL_NETWORKS)


def _guard_reason(ip: IPAddress, *, allow_private: bool) -> str | None:
    reason = refusal_reason(ip)
    if reason is not None and allow_private and _is_local(ip):
        return None
    return reason


# --- resolving ----------------------------------------------------------------------------


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to, as text; an OSError when it does not resolve."""
        ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo in the loop's thread pool)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [str(info[4][0]) for info in infos]


# --- the network backend ------------------------------------------------------------------

# Addresses tried per connection: enough for a dual-stack host, bounded for a hostile one.
MAX_ADDRESSES_TRIED = 3


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects `inner` to a checked address."""

    def __init__(
        self,
        inner: httpcore.AsyncNetworkBackend | None = None,
        *,
        resolver: Resolver | None = None,
        allow_private: bool = False,
    ) -> None:
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()
        self._resolver = resolver if resolver is not None else SystemResolver()
        self._allow_private = allow_private

    async def checked_addresses(self, host: str, port: int, timeout: float | None) -> list[str]:
        """The addresses to connect to, all allowed; AddressRefused if any one is not."""
        literal = _literal_ip(host)
        if literal is not None:
            answers = [str(literal)]
        else:
            try:
                async with asyncio.timeout(timeout):
                    answers = await self._resolver.resolve(host, port)
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
            except (OSError, UnicodeError) as exc:
                # httpx maps this to ConnectError, like a refused connection: transient.
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses: list[IPAddress] = []
        for answer in dict.fromkeys(answers):
            try:
                ip = ipaddress.ip_address(answer)
            except ValueError:
                raise AddressRefused(
                    f"{host}: resolver gave an unreadable address {answer!r}", host=host
                ) from None
            # Any bad answer refuses the host: a name that points inside is never fetched.
            reason = _guard_reason(ip, allow_private=self._allow_private)
            if reason is not None:
                raise AddressRefused(
                    f"refused to connect to {host} ({ip}): {reason}", host=host, address=str(ip)
                )
            addresses.append(ip)
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no addresses")
        return [str(ip) for ip in addresses]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.checked_addresses(host, port, timeout)
        # checked_addresses never returns an empty list, so this is always replaced.
        failure: Exception = httpcore.ConnectError(f"{host} has no addresses")
        for address in addresses[:MAX_ADDRESSES_TRIED]:
            try:
                # The checked IP, not the name: TLS still verifies the name, because httpcore
                # takes server_hostname from the request's origin, not from this call.
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused(f"refused to connect to unix socket {path}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _BackendTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: httpcore.AsyncNetworkBackend, limits: httpx.Limits) -> None:
        super().__init__(http2=False, limits=limits)
        # httpx 0.28 takes no network backend, and every method of AsyncHTTPTransport
        # (handle_async_request, aclose, __aenter__/__aexit__) goes through the private
        # `self._pool` (httpx/_transports/default.py). So we replace the pool it just built with
        # the same pool on the given backend; no proxy, no uds, no retries. httpx is pinned
        # <0.29 and test_netguard drives a request through this end to end to catch a change.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=backend,
        )


def guarded_transport(
    *,
    resolver: Resolver | None = None,
    backend: httpcore.AsyncNetworkBackend | None = None,
    allow_private: bool = False,
    limits: httpx.Limits | None = None,
) -> httpx.AsyncBaseTransport:
    """An httpx transport whose every connection passes the guard.

    Give it to `httpx.AsyncClient(transport=...)`: a client with an explicit transport ignores
    HTTP(S)_PROXY from the environment, which would otherwise connect for us, unguarded.
    `allow_private` is for local development and tests: it lets loopback and private networks
    through, never cloud metadata. A refusal surfaces from `client.send` as AddressRefused
    itself: httpx re-raises exceptions that are not httpcore's unchanged.
    """
    guarded = GuardedNetworkBackend(backend, resolver=resolver, allow_private=allow_private)
    if limits is None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's default
    return transport_on(guarded, limits)


def transport_on(
    backend: httpcore.AsyncNetworkBackend, limits: httpx.Limits
) -> httpx.AsyncBaseTransport:
    """httpx's own transport, its connections made by `backend`."""
    return _BackendTransport(backend, limits)
