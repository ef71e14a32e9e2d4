"""External API metrics, taken at the HTTP transport: every request the clients send, by service,
operation and outcome class, with its time to the response's headers.

The transport is httpx's seam, so the clients in jobs/ stay free of metrics: worker/app.py wraps
the transports it builds. The service and operation come from a fixed table of the providers'
endpoints (their protocols fix the paths), so labels stay bounded whatever URL is asked for.
"""

import time
from collections.abc import Callable

import httpx

from jobs.clients import discovery, email_finder, llm
from worker.observability.metrics import Metrics

# (path suffix, service, operation)
PROVIDER_ENDPOINTS = (
    ("/v5/company/search", discovery.SERVICE, "company_search"),
    ("/v2/domain-search", email_finder.SERVICE, "domain_search"),
    ("/chat/completions", llm.SERVICE, "chat_completion"),
)
OTHER = ("other", "other")
WEBSITE = ("website", "fetch")
OPERATIONS = (*((service, op) for _, service, op in PROVIDER_ENDPOINTS), OTHER, WEBSITE)

Classify = Callable[[httpx.Request], tuple[str, str]]


def provider_operation(request: httpx.Request) -> tuple[str, str]:
    path = request.url.path
    for suffix, service, operation in PROVIDER_ENDPOINTS:
        if path.endswith(suffix):
            return service, operation
    return OTHER


def website_fetch(request: httpx.Request) -> tuple[str, str]:
    return WEBSITE


def outcome_class(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "success"


class InstrumentedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, inner: httpx.AsyncBaseTransport, metrics: Metrics, classify: Classify
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._classify = classify

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        service, operation = self._classify(request)
        outcome = "error"
        started = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
            outcome = outcome_class(response.status_code)
            return response
        except httpx.TimeoutException:
            outcome = "timeout"
            raise
        except httpx.TransportError:
            outcome = "network_error"
            raise
        finally:
            took = time.perf_counter() - started
            self._metrics.external_requests.labels(service, operation, outcome).inc()
            self._metrics.external_duration.labels(service, operation).observe(took)

    async def aclose(self) -> None:
        await self._inner.aclose()
