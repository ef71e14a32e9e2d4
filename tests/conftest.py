"""Shared fixtures. Integration tests get a throwaway redis-server for the whole session.

The suite runs in parallel (pytest-xdist: `python3 dev.py test` passes `-n`). Each xdist worker
is its own process with its own session, so it gets its own redis-server on its own free port,
and `redis_url` empties only that one. A test stays parallel-safe by taking its Redis from
`redis_url`/`redis` (or starting its own `RedisServer()`), its ports from `free_port()`, its
files from `tmp_path`, and reporting numbers through `figures`; a test that runs for seconds
is marked `@pytest.mark.slow` (the quick loop leaves it out; a parallel run starts it first).
"""

import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import pytest
from redis.asyncio import Redis

from tests.support.fake_providers import FakeProviders
from tests.support.processes import RedisServer

# Fault tests report what they counted at the far end; the lines are printed together at the end
# of the run (a passing test's own output is captured), so every CI log shows them. They travel
# as the test's user properties, which xdist sends from its workers to the process that prints.
FIGURE = "figure"


class Figures(Protocol):
    def __call__(self, name: str, **values: Any) -> None: ...


class FigureLines:
    """Collects the figures from every test's report, wherever the test ran, and prints them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # The teardown report carries every property the test added, and comes once.
        if report.when == "teardown":
            self.lines += [str(value) for name, value in report.user_properties if name == FIGURE]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.lines:
            terminalreporter.section("figures")
            for line in self.lines:
                terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(FigureLines(), "figure-lines")
    if config.getoption("numprocesses", None) and config.getoption("maxschedchunk", None) is None:
        # xdist's load scheduling first hands each worker a quarter of its share in one piece,
        # which would give one worker every slow test (they come first, below); two at a time
        # makes the workers take the next test from one queue as they free up.
        config.option.maxschedchunk = 2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a parallel run, the slow tests first: the longest ones then overlap the rest of the
    suite instead of starting last on one worker while the others sit idle. (xdist's workers
    collect, and each has a `workerinput`; they all sort alike.)"""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    def report(name: str, **values: Any) -> None:
        line = f"[{name}] " + ", ".join(f"{key}={value}" for key, value in values.items())
        request.node.user_properties.append((FIGURE, line))

    return report


@pytest.fixture(scope="session")
def redis_instance() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (python3 dev.py test installs it)")
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def promtool() -> str:
    """Prometheus's own checker, for the alert rules, the dashboard's queries and a scrape."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed (Debian package `prometheus`; .ci/run installs it)")
    return binary


@pytest.fixture
async def redis_url(redis_instance: RedisServer) -> str:
    """The session's Redis, emptied before each test so no state leaks between tests."""
    client = Redis.from_url(redis_instance.url)
    await client.flushall()
    await client.aclose()
    return redis_instance.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def fake_providers() -> Iterator[FakeProviders]:
    """The three providers on loopback, no faults until a test configures them; `.env()` gives
    the worker's settings variables."""
    with FakeProviders() as fake:
        yield fake
