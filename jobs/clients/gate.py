"""The seam through which the engine's shared rate limits reach the provider clients.

The domain never imports the engine: a client is handed a `RateGate` (built by the engine from
settings) and asks it before every request. A gate that finds the service at its limit raises
`jobs.errors.Deferred`, which the runtime turns into "run this job again once the limit frees",
without spending a try.
"""

from typing import Protocol


class RateGate(Protocol):
    async def acquire(self, service: str) -> None:
        """Return when one request to `service` may go out now; raise Deferred otherwise."""
        ...


class OpenGate:
    """No limit: what a client uses when it is given no gate."""

    async def acquire(self, service: str) -> None:
        return None
