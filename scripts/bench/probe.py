"""What every benchmark worker process measures about itself, and its handshake with the parent.

Needs only the standard library and redis-py: the taskiq peer imports it from an environment of
its own (redis-py 8), where none of the project is installed.

The handshake: a child sets its worker up (and enqueues, for the peers that enqueue their own
jobs), prints `READY`, waits for a line on stdin, drains, and prints `RESULT {json}` last. The
parent reads Redis's counters between the last READY and the go, so setup is never measured.
Logs go to stderr, which the parent sends to a file: a pipe it had to keep reading would
throttle a worker that logs every job on a busy machine.
"""

import asyncio
import json
import resource
import sys
import time
from typing import Any

from redis.asyncio.connection import AbstractConnection

READY = "READY"
GO = "GO"
RESULT = "RESULT "


class RoundTrips:
    """redis-py socket writes: one per command, one per pipeline or transaction."""

    def __init__(self) -> None:
        self.count = 0
        send = AbstractConnection.send_packed_command
        box = self

        async def counted(
            self: AbstractConnection, command: Any, check_health: bool = True
        ) -> None:
            box.count += 1
            await send(self, command, check_health)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    """This process's resident memory now (not its peak), from /proc."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


class Span:
    """From the go to the end of the drain: wall clock, own CPU, round trips."""

    def __init__(self, trips: RoundTrips) -> None:
        self.trips = trips
        self.start_epoch = self.cpu0 = 0.0
        self.trips0 = 0

    async def ready_then_go(self) -> None:
        print(READY, flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        print(GO, file=sys.stderr, flush=True)  # where the drain's log lines begin
        self.start_epoch, self.cpu0, self.trips0 = time.time(), own_cpu_s(), self.trips.count

    def result(self, done: int, **extra: Any) -> dict[str, Any]:
        return {
            "start": self.start_epoch,
            "end": time.time(),
            **extra,
            "cpu_s": own_cpu_s() - self.cpu0,
            "round_trips": self.trips.count - self.trips0,
            "done": done,
            "rss_mb": rss_mb(),
        }


def emit(result: dict[str, Any]) -> None:
    print(RESULT + json.dumps(result), flush=True)
