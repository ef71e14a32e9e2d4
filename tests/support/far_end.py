"""Far-end accounting: what a fake provider saw and served, and the questions tests ask of it.

The record is written by the server's handler threads and read by the test, so every read goes
through a snapshot taken under the lock. Times are `time.monotonic()`, which on Linux is one
clock for every process on the machine.
"""

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass

from tests.support.faults import Endpoint, FaultKind


@dataclass(frozen=True)
class Served:
    """One request and what it got."""

    seq: int  # arrival order across the server
    endpoint: Endpoint
    key: str  # email_finder: the domain; llm: the prompt's company domain; discovery: page:N
    call: int  # the n-th call for this endpoint and key, from 1
    fault: FaultKind
    status: int  # the status sent (for a timeout, the 504 sent after the client gave up)
    retry_after_s: int | None
    arrived: float
    answered: float
    door: str = "main"  # the fake's port it came through (FakeProviders.open_door)


@dataclass(frozen=True)
class EarlyRetry:
    """A request that came before the Retry-After of a 429 for its key had passed."""

    limited: Served
    early: Served

    @property
    def waited_s(self) -> float:
        return self.early.arrived - self.limited.answered


class FarEnd:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._served: list[Served] = []
        self._calls: Counter[tuple[str, str]] = Counter()
        self._endpoint_calls: Counter[str] = Counter()
        # seq -> endpoint, door, arrived: until answered
        self._held: dict[int, tuple[Endpoint, str, float]] = {}
        self._seq = 0

    def arrive(
        self, endpoint: Endpoint, key: str, door: str = "main"
    ) -> tuple[int, int, int, float]:
        """Count a request in as it arrives: (seq, key call, endpoint call, arrival time)."""
        with self._lock:
            self._seq += 1
            self._calls[(endpoint, key)] += 1
            self._endpoint_calls[endpoint] += 1
            arrived = time.monotonic()
            self._held[self._seq] = (endpoint, door, arrived)
            return (
                self._seq,
                self._calls[(endpoint, key)],
                self._endpoint_calls[endpoint],
                arrived,
            )

    def record(self, served: Served) -> None:
        with self._lock:
            self._held.pop(served.seq, None)
            self._served.append(served)

    def held(self, endpoint: Endpoint, door: str | None = None) -> list[float]:
        """Arrival times of the requests to `endpoint` (through `door`) not answered yet."""
        with self._lock:
            return [
                arrived
                for (where, through, arrived) in self._held.values()
                if where == endpoint and door in (None, through)
            ]

    def snapshot(
        self, endpoint: Endpoint | None = None, key: str | None = None
    ) -> tuple[Served, ...]:
        """Answered requests in arrival order (one still being held is not in yet)."""
        with self._lock:
            served = list(self._served)
        chosen = [
            s
            for s in served
            if (endpoint is None or s.endpoint == endpoint) and (key is None or s.key == key)
        ]
        return tuple(sorted(chosen, key=lambda s: s.seq))

    def counts(self, endpoint: Endpoint | None = None) -> Counter[str]:
        """Requests per key."""
        return Counter(s.key for s in self.snapshot(endpoint))

    def faults(self, endpoint: Endpoint | None = None) -> Counter[FaultKind]:
        """Requests per fault served."""
        return Counter(s.fault for s in self.snapshot(endpoint))

    def early_retries(self, endpoint: Endpoint | None = None) -> list[EarlyRetry]:
        """Every request that arrived after a 429 for its key was sent, yet sooner than that
        429's Retry-After. Requests already on their way when the 429 went out do not count."""
        early: list[EarlyRetry] = []
        by_key: dict[tuple[str, str], list[Served]] = {}
        for one in self.snapshot(endpoint):
            by_key.setdefault((one.endpoint, one.key), []).append(one)
        for served in by_key.values():
            for limited in served:
                if limited.fault != "rate_limited" or limited.retry_after_s is None:
                    continue
                not_before = limited.answered + limited.retry_after_s
                early.extend(
                    EarlyRetry(limited, later)
                    for later in served
                    if limited.answered <= later.arrived < not_before
                )
        return early

    def describe(self) -> str:
        """One line per endpoint for a test to print: requests, keys, faults served."""
        lines = []
        for endpoint in sorted({s.endpoint for s in self.snapshot()}):
            served = self.snapshot(endpoint)
            faults = Counter(s.fault for s in served)
            shown = ", ".join(f"{kind} {n}" for kind, n in sorted(faults.items()))
            keys = len({s.key for s in served})
            lines.append(f"{endpoint}: {len(served)} requests for {keys} keys ({shown})")
        return "\n".join(lines)

    def max_in_window(
        self, window_s: float, endpoint: Endpoint | None = None, key: str | None = None
    ) -> int:
        """The most requests that arrived within any `window_s` seconds."""
        return max_in_window((s.arrived for s in self.snapshot(endpoint, key)), window_s)


def max_in_window(times: Iterable[float], window_s: float) -> int:
    """The most of `times` inside any half-open window [t, t + window_s)."""
    window: deque[float] = deque()
    best = 0
    for t in sorted(times):
        window.append(t)
        while window[0] <= t - window_s:
            window.popleft()
        best = max(best, len(window))
    return best
