"""A real loopback HTTP server speaking the three provider protocols, with fault injection.

    with FakeProviders(seed=7) as fake:
        fake.configure("email_finder", FaultPlan(server_error=0.2, rate_limited=0.1))
        env = {**worker_env, **fake.env()}     # PW_*__BASE_URL -> this server
        ...
        assert not fake.far_end.early_retries()

- `POST /v5/company/search` (People Data Labs-style; scroll_token paging), `GET
  /v2/domain-search?domain=` (Hunter-style) and `POST /v1/chat/completions` (OpenAI-compatible).
  Discovery and the email finder serve the bundled sample companies through the offline
  stand-ins, so a run against this server finds what an offline run finds.
- Each endpoint has a `FaultPlan` (tests.support.faults): seeded rates of 5xx, 429 with
  Retry-After, timeouts, malformed bodies, a fixed latency, and scripted call sequences.
- `serve_site(company, page)` adds a company of the test's own (first in discovery's answer,
  known to the email finder) and serves `page` as its website, to any GET whose Host is the
  company's domain: a worker reaches it through tests.support.loopback_sites.
- `far_end` (tests.support.far_end) records every request: time, endpoint, key, fault served,
  and the door it came through: `open_door("b")` listens on a second port with the same plans
  and record, so a test with two workers tells whose request it was.

A threaded server on a free port of 127.0.0.1; the worker's settings accept a loopback base URL
without an API key. Stopping it releases held requests and closes open connections, so no
handler thread outlives the block.
"""

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from jobs.clients.standins import SampleCompany, SampleData, load_sample_data, sample_transport
from tests.support.far_end import FarEnd, Served
from tests.support.faults import ENDPOINTS, Endpoint, FaultKind, FaultPlan, decide
from tests.support.provider_answers import (
    HTML_PAGE,
    WRONG_SHAPE,
    Answer,
    chat_completion,
    company_search,
    domain_search,
    error_answer,
    json_answer,
    prompt_subject,
    prompt_text,
    truncated,
)

HOST = "127.0.0.1"
MAIN_DOOR = "main"
ROUTES: dict[tuple[str, str], Endpoint] = {
    ("POST", "/v5/company/search"): "discovery",
    ("GET", "/v2/domain-search"): "email_finder",
    ("POST", "/v1/chat/completions"): "llm",
}
ENV_VARS: dict[Endpoint, str] = {
    "discovery": "PW_DISCOVERY__BASE_URL",
    "email_finder": "PW_EMAIL_FINDER__BASE_URL",
    "llm": "PW_LLM__BASE_URL",
}


class FakeProviders:
    def __init__(
        self,
        plans: Mapping[Endpoint, FaultPlan] | None = None,
        *,
        seed: int = 0,
        data: SampleData | None = None,
    ) -> None:
        self.seed = seed
        self.far_end = FarEnd()
        self._plans: dict[Endpoint, FaultPlan] = {e: FaultPlan() for e in ENDPOINTS}
        self._plans.update(plans or {})
        self._data = data if data is not None else load_sample_data()
        self._transport = sample_transport(self._data)
        self._sites: dict[str, bytes] = {}  # domain -> the page served as its website
        self._lock = threading.Lock()
        self._pages: dict[str, int] = {}  # scroll_token handed out -> the page it opens
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._doors: dict[str, tuple[_Server, threading.Thread]] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        self._server, self._thread = self._listen(MAIN_DOOR)
        return self

    def open_door(self, door: str) -> str:
        """Listen on another port too, and return its URL: requests through it are recorded
        with `door` (same plans, same record, same call counts)."""
        if door == MAIN_DOOR or door in self._doors:
            raise ValueError(f"door {door!r} is open already")
        self._doors[door] = self._listen(door)
        return self.url_of(door)

    def _listen(self, door: str) -> tuple["_Server", threading.Thread]:
        server = _Server((HOST, 0), _Handler)
        server.fake = self
        server.door = door
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-providers"
        )
        thread.start()
        return server, thread

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        servers = [(self._server, self._thread), *self._doors.values()]
        for server, thread in servers:
            server.shutdown()
            server.drop_connections()
            server.server_close()  # joins the handler threads
            if thread is not None:
                thread.join()
        self._server = None
        self._doors = {}

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.url_of(MAIN_DOOR)

    def url_of(self, door: str) -> str:
        server = self._server if door == MAIN_DOOR else self._doors[door][0]
        if server is None:
            raise RuntimeError("the fake providers are not running")
        return f"http://{HOST}:{server.server_address[1]}"

    def env(
        self, *endpoints: Endpoint, timeout_s: float | None = None, door: str = MAIN_DOOR
    ) -> dict[str, str]:
        """The settings variables pointing the worker at this server (all three by default),
        through `door` (see `open_door`).

        `timeout_s` sets those clients' request timeout too: a `timeout` fault only reads as
        one when the plan's `hold_s` is longer than it."""
        chosen = endpoints or ENDPOINTS
        env = {ENV_VARS[e]: self.url_of(door) for e in chosen}
        if timeout_s is not None:
            env.update(
                {ENV_VARS[e].replace("BASE_URL", "TIMEOUT_S"): str(timeout_s) for e in chosen}
            )
        return env

    # --- companies of the test's own ----------------------------------------------------------

    def serve_site(self, company: SampleCompany, page: str) -> None:
        """Discovery lists `company` first and the email finder knows its contacts, as for a
        sample company; `page` is its website, served to a GET with the company's domain as
        Host. Its record's website should name this server's port (`site_url`)."""
        with self._lock:
            self._data = SampleData(companies=(company, *self._data.companies))
            self._transport = sample_transport(self._data)
            self._sites[company.domain] = page.encode()

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port

    def site_url(self, domain: str) -> str:
        """The website address of a company served by `serve_site`."""
        return f"http://{domain}:{self.port}/"

    def site_page(self, host: str) -> bytes | None:
        with self._lock:
            return self._sites.get(host.lower().rsplit(":", 1)[0])

    # --- faults ------------------------------------------------------------------------------

    def configure(self, endpoint: Endpoint, plan: FaultPlan) -> None:
        """Replace one endpoint's plan; calls already counted keep their numbers."""
        with self._lock:
            self._plans[endpoint] = plan

    def plan(self, endpoint: Endpoint) -> FaultPlan:
        with self._lock:
            return self._plans[endpoint]

    # --- one request ---------------------------------------------------------------------------

    def key_for(self, endpoint: Endpoint, request: Any, query: dict[str, str]) -> str:
        if endpoint == "email_finder":
            return query.get("domain", "").strip().lower() or "none"
        if endpoint == "llm":
            return prompt_subject(prompt_text(request))
        token = request.get("scroll_token") if isinstance(request, dict) else None
        if not token:
            return "page:0"
        with self._lock:
            page = self._pages.get(str(token))
        return f"page:{page}" if page is not None else "page:?"

    def answer(self, endpoint: Endpoint, key: str, raw: bytes, query: dict[str, str]) -> Answer:
        """The real answer, as the provider would give it with no fault."""
        if endpoint == "email_finder":
            return domain_search(self._transport, query)
        if endpoint == "llm":
            return chat_completion(_json(raw))
        page = company_search(self._transport, raw)
        token = _json(page.body).get("scroll_token") if page.status == 200 else None
        if token and key.startswith("page:") and key != "page:?":
            with self._lock:
                self._pages[str(token)] = int(key.removeprefix("page:")) + 1
        return page

    def serve(
        self, endpoint: Endpoint, raw: bytes, query: dict[str, str], door: str = MAIN_DOOR
    ) -> tuple[Answer, bool]:
        """(the answer to send, whether it comes after holding the request past the client's
        timeout). Records the request, with the door it came through."""
        key = self.key_for(endpoint, _json(raw), query)
        seq, key_call, endpoint_call, arrived = self.far_end.arrive(endpoint, key, door)
        plan = self.plan(endpoint)
        fault = decide(
            plan,
            seed=self.seed,
            endpoint=endpoint,
            key=key,
            key_call=key_call,
            endpoint_call=endpoint_call,
        )
        if plan.latency_s:
            self._stopping.wait(plan.latency_s)
        answer, retry_after = self._faulty(endpoint, key, fault, plan, raw, query)
        self.far_end.record(
            Served(
                seq=seq,
                endpoint=endpoint,
                key=key,
                call=key_call,
                fault=fault,
                status=answer.status,
                retry_after_s=retry_after,
                arrived=arrived,
                answered=time.monotonic(),
                door=door,
            )
        )
        return answer, fault == "timeout"

    def _faulty(
        self,
        endpoint: Endpoint,
        key: str,
        fault: FaultKind,
        plan: FaultPlan,
        raw: bytes,
        query: dict[str, str],
    ) -> tuple[Answer, int | None]:
        if fault == "server_error":
            return error_answer(endpoint, plan.status, "injected server error"), None
        if fault == "rate_limited":
            limited = error_answer(endpoint, 429, "injected rate limit")
            header = ("Retry-After", str(plan.retry_after_s))
            return Answer(429, limited.body, (header,)), plan.retry_after_s
        if fault == "timeout":
            self._stopping.wait(plan.hold_s)
            return error_answer(endpoint, 504, "held past the client's timeout"), None
        if fault == "wrong_shape":
            return WRONG_SHAPE, None
        if fault == "html":
            return HTML_PAGE, None
        real = self.answer(endpoint, key, raw, query)
        return (truncated(real) if fault == "truncated" else real), None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


class _Server(ThreadingHTTPServer):
    # Joined on close (after their connections are dropped), so none outlives the server.
    daemon_threads = False
    block_on_close = True
    # A worker opens up to 100 connections at once; socketserver's default backlog of 5 would
    # make the kernel drop SYNs and the clients wait seconds to retry them.
    request_queue_size = 512
    fake: FakeProviders
    door: str

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # A client that hung up mid-request (a worker killed or stopped) is no error here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Wake handler threads waiting on idle keep-alive connections."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx uses it
    timeout = 30  # an idle connection is closed after this long
    # Headers and body go out as two writes; with Nagle on, each answer waited ~40 ms for the
    # client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        page = self.server.fake.site_page(self.headers.get("Host", ""))
        if page is not None and method == "GET":
            self._send(Answer(200, page, ()), content_type="text/html; charset=utf-8")
            return
        endpoint = ROUTES.get((method, split.path))
        if endpoint is None:
            self._send(json_answer(404, {"error": f"no route {method} {split.path}"}))
            return
        answer, held = self.server.fake.serve(
            endpoint, raw, dict(parse_qsl(split.query)), self.server.door
        )
        if held:
            self.close_connection = True  # the client has given up on this connection
        self._send(answer)

    def _send(self, answer: Answer, content_type: str = "application/json") -> None:
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left (a timeout on its side)

    def log_message(self, *args: object) -> None:
        pass  # the far-end record is the log
