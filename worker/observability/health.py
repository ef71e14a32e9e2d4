"""This pod's own health: a heartbeat the worker's event loop ticks, and the HTTP server that
serves /metrics, /healthz and /readyz on the metrics port.

The server runs in a thread, not on the event loop: a loop that is blocked (a CPU-bound job, a
sync call that hangs) still gets a truthful answer, because /healthz only compares the loop's
last tick (and the last pass of arq's poll loop) with the clock. Readiness asks Redis directly
(PING with a short timeout) from that thread, so it does not depend on the loop either.
"""

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from redis import Redis as SyncRedis
from redis.exceptions import RedisError

from worker.observability.metrics import Metrics
from worker.observability.ports import HEALTH_PATH, METRICS_PATH, READY_PATH

log = logging.getLogger("prospect_worker.health")

TICK_S = 1.0
READY_TIMEOUT_S = 1.0

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Heartbeat:
    """Ticked by a task on the worker's loop; read from the HTTP thread (a float write and read
    are atomic under the GIL, so no lock is needed)."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        self._last = clock()

    def tick(self) -> None:
        self._last = self._clock()
        self._metrics.heartbeat.set(time.time())

    def age_s(self) -> float:
        return self._clock() - self._last

    async def run(self, tick_s: float = TICK_S) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.tick()
            due = loop.time() + tick_s
            await asyncio.sleep(tick_s)
            # How late the loop woke up: a steady lag means jobs hog the loop.
            self._metrics.loop_lag.set(max(0.0, loop.time() - due))


class Liveness:
    """/healthz: this pod's event loop ticks (the heartbeat), and, when given, arq's poll loop
    has made a pass (a poll stuck on a call that never returns leaves the event loop free)."""

    def __init__(
        self,
        heartbeat: Heartbeat,
        *,
        stale_s: float,
        poll_tick: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._heartbeat = heartbeat
        self._stale_s = stale_s
        self._poll_tick = poll_tick
        self._clock = clock

    def __call__(self) -> tuple[bool, str]:
        loop_age = self._heartbeat.age_s()
        if loop_age > self._stale_s:
            return False, f"event loop last ticked {loop_age:.1f}s ago"
        if self._poll_tick is not None:
            poll_age = self._clock() - self._poll_tick()
            if poll_age > self._stale_s:
                return False, f"poll loop last passed {poll_age:.1f}s ago"
        return True, f"event loop ticked {loop_age:.1f}s ago"


class RedisPing:
    """Readiness: can this pod reach Redis now? A sync client, used only from the HTTP thread."""

    def __init__(self, redis_url: str, metrics: Metrics) -> None:
        self._redis = SyncRedis.from_url(
            redis_url, socket_timeout=READY_TIMEOUT_S, socket_connect_timeout=READY_TIMEOUT_S
        )
        self._metrics = metrics

    def __call__(self) -> tuple[bool, str]:
        try:
            self._redis.ping()
        except (RedisError, OSError) as exc:
            self._metrics.redis_errors.labels("readiness").inc()
            return False, f"redis unreachable: {type(exc).__name__}"
        return True, "redis ok"

    def close(self) -> None:
        self._redis.close()


class _LoggedErrors:
    """wsgiref's stream for a failing request: it writes the traceback in pieces to stderr and
    flushes; here the pieces become one line of the project's log at the flush."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        text, self._parts = "".join(self._parts).strip(), []
        if text:
            log.error("probe server: %s", text)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, fmt: str, *args: Any) -> None:
        """Probes every few seconds would flood the log; wsgiref prints each request."""

    def get_stderr(self) -> _LoggedErrors:  # type: ignore[override]
        return _LoggedErrors()


class _LoggedServer(ThreadingWSGIServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints a failed request's traceback to stderr; here it is one line of
        the project's log, and a probe that hung up early (a timed-out kubelet) no traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.warning("probe request from %s ended early: %s", client_address[0], error)
        else:
            log.error("probe request from %s failed", client_address[0], exc_info=error)


class ProbeServer:
    """/metrics, /healthz and /readyz on one port, in a daemon thread."""

    def __init__(
        self,
        metrics: Metrics,
        alive: Callable[[], tuple[bool, str]],
        ready: Callable[[], tuple[bool, str]],
    ) -> None:
        self._metrics_app = make_wsgi_app(metrics.registry)
        self._alive = alive
        self._ready = ready
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == METRICS_PATH:
            body: Iterable[bytes] = self._metrics_app(environ, start_response)
            return body
        if path == HEALTH_PATH:
            ok, why = self._alive()
            return _text(start_response, ok, why)
        if path == READY_PATH:
            ok, why = self._ready()
            return _text(start_response, ok, why)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    def start(self, host: str, port: int) -> int:
        """Serve; returns the bound port (useful with port 0)."""
        self._server = make_server(host, port, self.app, _LoggedServer, handler_class=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()
        return int(self._server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _text(start_response: StartResponse, ok: bool, message: str) -> list[bytes]:
    status = "200 OK" if ok else "503 Service Unavailable"
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [f"{'ok' if ok else 'unhealthy'}: {message}\n".encode()]
