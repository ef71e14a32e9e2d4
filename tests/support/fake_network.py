"""An httpcore network with no network: each connection answers every request with RESPONSE
and records what was written to it, for tests of transports and network backends."""

import ssl
from collections.abc import Iterable

import httpcore

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"


class FakeStream(httpcore.AsyncNetworkStream):
    """Answers every request with RESPONSE; records the TLS server name it was given."""

    def __init__(self) -> None:
        self.written = b""
        self.server_hostname: str | None = None
        self._unread = RESPONSE

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data, self._unread = self._unread[:max_bytes], self._unread[max_bytes:]
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written += buffer

    async def aclose(self) -> None:
        pass

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.server_hostname = server_hostname
        return self


class FakeBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, *, fail: bool = False) -> None:
        self.connects: list[tuple[str, int]] = []
        self.streams: list[FakeStream] = []
        self._fail = fail

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if self._fail:
            raise httpcore.ConnectError("fake: connection refused")
        stream = FakeStream()
        self.streams.append(stream)
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AssertionError("the guard must not pass a unix socket through")

    async def sleep(self, seconds: float) -> None:
        pass
