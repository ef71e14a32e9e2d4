"""One place that turns HTTP outcomes into the pipeline's error vocabulary.

Every client sends through `send_json`, so a 429 means the same thing for discovery, email lookup
and the LLM: transient, with the server's Retry-After when it gave one.
"""

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from jobs.clients.gate import RateGate
from jobs.errors import (
    MalformedResponse,
    PermanentError,
    RateLimited,
    TransientError,
    UnreadableResponse,
)

USER_AGENT = "prospect-worker/0.1"

Model = TypeVar("Model", bound=BaseModel)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def raise_for_status(response: httpx.Response, service: str) -> None:
    status = response.status_code
    if status < 400:
        return
    where = f"{service}: HTTP {status} from {response.request.method} {response.request.url.path}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429:
        raise RateLimited(where, retry_after=retry_after)
    if status >= 500:
        raise TransientError(where, retry_after=retry_after)
    raise PermanentError(where)


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    service: str,
    gate: RateGate | None = None,
) -> httpx.Response:
    """Send, mapping transport failures to TransientError; the status is not checked yet.

    With a gate, the request waits for (or is deferred by) the service's shared rate limit."""
    if gate is not None:
        await gate.acquire(service)
    try:
        return await client.send(request)
    except httpx.TimeoutException as exc:
        raise TransientError(f"{service}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"{service}: {type(exc).__name__}: {exc}") from exc


def parse_body(response: httpx.Response, model: type[Model], *, service: str) -> Model:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            # Not JSON at all (cut short, a proxy's HTML page): a fault on the way, not an
            # answer, so worth asking again.
            kind = response.headers.get("Content-Type", "no content type")
            raise UnreadableResponse(
                f"{service}: unreadable response ({first['msg']}; {len(response.content)} "
                f"bytes of {kind})"
            ) from exc
        # JSON the provider should not have sent: its bug; asking again will not fix it.
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise MalformedResponse(f"{service}: malformed response ({where}: {first['msg']})") from exc


async def send_json(
    client: httpx.AsyncClient,
    request: httpx.Request,
    model: type[Model],
    *,
    service: str,
    gate: RateGate | None = None,
) -> Model:
    """Send, classify the outcome, and validate the JSON body into `model`."""
    response = await send(client, request, service=service, gate=gate)
    raise_for_status(response, service)
    return parse_body(response, model, service=service)
