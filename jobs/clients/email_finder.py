"""Email lookup: a Hunter-style domain search, `GET {base}/v2/domain-search?domain=...`.

Hunter takes its key as the `api_key` query parameter, so the request URL carries a secret:
errors name only the path (see `raise_for_status`), and httpx's request log is kept quiet.
"""

from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict

from jobs.clients.http import send_json
from jobs.models import Contact

SERVICE = "email_finder"


class FoundEmail(BaseModel):
    model_config = ConfigDict(extra="ignore")
    value: str
    type: Literal["personal", "generic"] | None = None
    confidence: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    position: str | None = None


class DomainData(BaseModel):
    model_config = ConfigDict(extra="ignore")
    domain: str | None = None
    organization: str | None = None
    emails: list[FoundEmail] = []


class DomainSearch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    data: DomainData


def best_of(emails: list[FoundEmail]) -> FoundEmail | None:
    """A named person beats a role address; then the provider's confidence decides."""
    usable = [email for email in emails if "@" in email.value]
    if not usable:
        return None
    return max(usable, key=lambda e: (e.type == "personal", e.confidence or 0, e.value))


class EmailFinderClient:
    def __init__(
        self, http: httpx.AsyncClient, *, base_url: str, api_key: str | None, timeout: float
    ) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/v2/domain-search"
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout)

    async def domain_search(self, domain: str) -> DomainSearch:
        params = {"domain": domain, "limit": "10"}
        if self._api_key:
            params["api_key"] = self._api_key
        request = self._http.build_request("GET", self._url, params=params, timeout=self._timeout)
        return await send_json(self._http, request, DomainSearch, service=SERVICE)

    async def best_contact(self, domain: str) -> Contact | None:
        best = best_of((await self.domain_search(domain)).data.emails)
        if best is None:
            return None
        return Contact(
            email=best.value.lower(),
            first_name=best.first_name,
            last_name=best.last_name,
            position=best.position,
            confidence=max(0, min(100, best.confidence or 0)),
            source="email_finder",
        )
