"""Email lookup: a Hunter-style domain search, `GET {base}/v2/domain-search?domain=...`.

Hunter takes its key as the `api_key` query parameter, so the request URL carries a secret.
Errors name only the path (see `raise_for_status`); any error text that still holds the key is
masked here, and the worker keeps httpx's request log (which prints URLs) below INFO.
"""

import httpx
from pydantic import BaseModel, ConfigDict

from jobs.clients.gate import RateGate
from jobs.clients.http import send_json
from jobs.errors import JobError, PermanentError, TransientError
from jobs.models import Contact

SERVICE = "email_finder"
MASK = "***"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Verification(_Lenient):
    status: str | None = None  # valid | accept_all | unknown | invalid


class FoundEmail(_Lenient):
    value: str
    type: str | None = None  # "personal" or "generic"; anything else counts as generic
    confidence: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    position: str | None = None
    verification: Verification | None = None


class DomainData(_Lenient):
    domain: str | None = None
    organization: str | None = None
    emails: list[FoundEmail] = []


class DomainSearch(_Lenient):
    data: DomainData


def best_of(emails: list[FoundEmail]) -> FoundEmail | None:
    """A named person beats a role address; then the provider's confidence decides.

    An address the provider itself verified as undeliverable would only bounce."""
    usable = [
        email
        for email in emails
        if email.value.count("@") == 1
        and not (email.verification and email.verification.status == "invalid")
    ]
    if not usable:
        return None
    # The address breaks ties so the pick does not depend on the provider's ordering.
    return min(usable, key=lambda e: (e.type != "personal", -(e.confidence or 0), e.value))


def _masked(exc: JobError, secret: str) -> JobError:
    message = str(exc).replace(secret, MASK)
    if isinstance(exc, TransientError):
        return type(exc)(message, retry_after=exc.retry_after)
    return type(exc)(message)


class EmailFinderClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str | None,
        timeout: float,
        gate: RateGate | None = None,
    ) -> None:
        self._http = http
        self._gate = gate
        self._url = f"{base_url.rstrip('/')}/v2/domain-search"
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout)

    async def domain_search(self, domain: str) -> DomainSearch:
        """Hunter's answer for `domain`. Raises TransientError / RateLimited / PermanentError."""
        domain = domain.strip().lower()
        if not domain:
            raise PermanentError(f"{SERVICE}: no domain to search")
        params = {"domain": domain, "limit": "10"}
        if self._api_key:
            params["api_key"] = self._api_key
        request = self._http.build_request("GET", self._url, params=params, timeout=self._timeout)
        try:
            return await send_json(
                self._http, request, DomainSearch, service=SERVICE, gate=self._gate
            )
        except JobError as exc:
            key = self._api_key
            # A transport error's text (or its cause's) may quote the URL, and so the key.
            if key and (key in str(exc) or key in str(exc.__cause__)):
                raise _masked(exc, key) from None
            raise

    async def best_contact(self, domain: str) -> Contact | None:
        """The best address Hunter knows at `domain`, or None when it knows none."""
        best = best_of((await self.domain_search(domain)).data.emails)
        if best is None:
            return None
        return Contact(
            email=best.value.strip().lower(),
            first_name=best.first_name,
            last_name=best.last_name,
            position=best.position,
            confidence=max(0, min(100, best.confidence or 0)),
            source="email_finder",
        )
