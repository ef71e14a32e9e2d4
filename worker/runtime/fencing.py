"""Which jobs this worker owns, and for how long it may act for each without hearing from Redis.

A job is owned from the claim that wrote this worker's token into its in-progress marker until
the marker is renewed with another worker's token in it, or none. The marker lives
`in_progress_ttl_s` on Redis's clock from the moment a claim or renewal ran there, which is no
earlier than when this worker sent it; so a job whose last confirmation was *sent* at `t` is
surely still this worker's until `t + ttl` on the local monotonic clock, however long the reply
took. Past that, nothing says it still is: the job counts as lost (and stays lost) before its
next external call, whether the worker was stopped, starved, or Redis was away. Checking is
local and costs no round trip, so it can run before every call.

`FencedTransport` is the check on every HTTP request the job bodies make (providers, websites);
`FencedNetworkBackend` checks again as the request's bytes are written, so a stall that lands
between the first check and the write (a connection being opened, a pool slot awaited) sends
nothing once the worker resumes.
"""

import itertools
import logging
import os
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from jobs.fencing import Fence, JobLost, check_fence

log = logging.getLogger("prospect_worker.fencing")

CTX_OWNERSHIP = "ownership"  # arq's ctx key: the engine's Ownership, read by the runtime


def worker_id() -> str:
    """This process's owner name in tokens: readable (host and pid) and never reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class _Held:
    token: str
    valid_until: float  # monotonic
    lost: str | None = None  # why, once lost


class Ownership:
    """Built once per worker; the engine reports claims and renewals, the runtime asks."""

    def __init__(
        self,
        owner: str,
        ttl_s: float,
        *,
        marker_key: Callable[[str], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.owner = owner
        self._ttl_s = ttl_s
        self._marker_key = marker_key
        self._clock = clock
        self._epochs = itertools.count(1)
        self._held: dict[str, _Held] = {}
        self.lost_total = 0  # jobs this worker gave up, for logs and tests

    def new_token(self) -> str:
        return f"{self.owner}:{next(self._epochs)}"

    def claimed(self, job_id: str, token: str, sent_at: float) -> None:
        self._held[job_id] = _Held(token, sent_at + self._ttl_s)

    def renewed(
        self,
        sent_at: float,
        kept: Iterable[str],
        taken: Iterable[str],
        checked: Mapping[str, str] | None = None,
    ) -> None:
        """A renewal sent at `sent_at` found these markers still ours (`kept`), or not. With
        the tokens it `checked`, a job claimed again since (a new token) is not the one lost."""
        for job_id in kept:
            held = self._held.get(job_id)
            if held is not None and held.lost is None:
                held.valid_until = max(held.valid_until, sent_at + self._ttl_s)
        for job_id in taken:
            held = self._held.get(job_id)
            if checked is not None and held is not None and held.token != checked.get(job_id):
                continue  # that delivery ended; this worker claimed the job again meanwhile
            self._lose(job_id, "its in-progress marker lapsed or holds another worker's token")

    def released(self, job_id: str, token: str) -> None:
        held = self._held.get(job_id)
        if held is not None and held.token == token:
            del self._held[job_id]

    def tokens(self) -> dict[str, str]:
        """Job id -> token of every job still to renew (not known lost)."""
        return {job_id: held.token for job_id, held in self._held.items() if held.lost is None}

    def token(self, job_id: str) -> str | None:
        held = self._held.get(job_id)
        return None if held is None else held.token

    def check(self, job_id: str) -> None:
        """Raise JobLost unless this worker may still act for the job."""
        held = self._held.get(job_id)
        if held is None:
            raise JobLost(f"{job_id} is not claimed by this worker")
        if held.lost is None and self._clock() >= held.valid_until:
            self._lose(job_id, "no renewal reached Redis within the marker's life")
        if held.lost is not None:
            raise JobLost(f"{job_id}: {held.lost}")

    def fence(self, job_id: str) -> Fence | None:
        """The fence a job's task runs under, or None when this worker never claimed it."""
        held = self._held.get(job_id)
        if held is None:
            return None
        return Fence(self._marker_key(job_id), held.token, lambda: self.check(job_id))

    def _lose(self, job_id: str, why: str) -> None:
        held = self._held.get(job_id)
        if held is None or held.lost is not None:
            return
        held.lost = why
        self.lost_total += 1
        log.warning("job %s is no longer this worker's (%s): stopping it", job_id, why)


class FencedTransport(httpx.AsyncBaseTransport):
    """Checks the calling job's fence before every request (a redirect's included)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        check_fence()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class FencedStream(httpcore.AsyncNetworkStream):
    """A connection that checks the writing job's fence before each write: the last moment a
    request can still be held back."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        check_fence()
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return FencedStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class FencedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network, with every connection a FencedStream."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return FencedStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return FencedStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
