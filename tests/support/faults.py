"""What a fake provider endpoint does to each call: a seeded, deterministic fault plan.

The fault a call gets depends only on the seed, the endpoint, the call's key (a domain, a page,
a prompt's company) and how many calls for that key came before it, never on which thread got
there first. So a run with 100 concurrent prospects sees the same faults for the same prospects
every time, and a failing test can be rerun as it was.
"""

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Endpoint = Literal["discovery", "email_finder", "llm"]
ENDPOINTS: tuple[Endpoint, ...] = ("discovery", "email_finder", "llm")

# ok:           the real answer.
# server_error: a 5xx (the plan's `status`), JSON error body.
# rate_limited: a 429 with `Retry-After: <retry_after_s>`.
# timeout:      the request is held `hold_s` (longer than the client waits), then a 504.
# truncated:    a 200 whose JSON body is cut in half.
# html:         a 200 labelled JSON whose body is a proxy's HTML page.
# wrong_shape:  a 200 with valid JSON the client's model rejects (its required field missing).
FaultKind = Literal[
    "ok", "server_error", "rate_limited", "timeout", "truncated", "html", "wrong_shape"
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scripted(_Model):
    """Calls `after + 1` to `after + first` get `fault`: "the first 3 calls for acme.example
    fail with a 503" is `Scripted(fault="server_error", key="acme.example", first=3)`.

    Calls are counted per key (each key's own first calls) unless `per_key` is false, when they
    are counted across the endpoint. `key=None` matches every key."""

    fault: FaultKind
    first: int = Field(default=1, ge=1)
    after: int = Field(default=0, ge=0)
    key: str | None = None
    per_key: bool = True

    def applies(self, key: str, key_call: int, endpoint_call: int) -> bool:
        if self.key is not None and self.key != key:
            return False
        call = key_call if self.per_key else endpoint_call
        return self.after < call <= self.after + self.first


class FaultPlan(_Model):
    """One endpoint's behaviour. Rates are shares of calls (0-1, summing to at most 1); the
    script is checked first, in order, and the first rule that applies wins."""

    server_error: float = Field(default=0.0, ge=0, le=1)
    rate_limited: float = Field(default=0.0, ge=0, le=1)
    timeout: float = Field(default=0.0, ge=0, le=1)
    malformed: float = Field(default=0.0, ge=0, le=1)  # half truncated, half wrong shape
    unreadable: float = Field(default=0.0, ge=0, le=1)  # half truncated, half HTML: not JSON
    latency_s: float = Field(default=0.0, ge=0, le=10)  # added before every answer
    status: int = Field(default=503, ge=500, le=599)
    # Whole seconds: the clients read only delta-seconds or an HTTP date.
    retry_after_s: int = Field(default=1, ge=0, le=3600)
    # Bounded, so a test's fake never holds a thread (or the test) for long.
    hold_s: float = Field(default=2.0, gt=0, le=60)
    script: tuple[Scripted, ...] = ()

    @model_validator(mode="after")
    def _rates_fit(self) -> "FaultPlan":
        rates = (
            self.server_error,
            self.rate_limited,
            self.timeout,
            self.malformed,
            self.unreadable,
        )
        if sum(rates) > 1 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        return self


def draw(seed: int, endpoint: str, key: str, key_call: int) -> float:
    """A uniform number in [0, 1) fixed by its inputs (a hash, not a shared generator)."""
    digest = hashlib.blake2b(f"{seed}|{endpoint}|{key}|{key_call}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


def decide(
    plan: FaultPlan, *, seed: int, endpoint: str, key: str, key_call: int, endpoint_call: int
) -> FaultKind:
    """The fault for one call; `key_call` and `endpoint_call` count from 1."""
    for rule in plan.script:
        if rule.applies(key, key_call, endpoint_call):
            return rule.fault
    u = draw(seed, endpoint, key, key_call)
    bands: tuple[tuple[float, FaultKind], ...] = (
        (plan.server_error, "server_error"),
        (plan.rate_limited, "rate_limited"),
        (plan.timeout, "timeout"),
        (plan.malformed / 2, "truncated"),
        (plan.malformed / 2, "wrong_shape"),
        (plan.unreadable / 2, "truncated"),
        (plan.unreadable / 2, "html"),
    )
    edge = 0.0
    for share, fault in bands:
        edge += share
        if u < edge:
            return fault
    return "ok"
