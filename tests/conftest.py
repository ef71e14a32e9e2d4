"""Shared fixtures. Integration tests get a throwaway redis-server for the whole session."""

import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import pytest
from redis.asyncio import Redis

from tests.support.fake_providers import FakeProviders
from tests.support.processes import RedisServer

# Fault tests report what they counted at the far end; the lines are printed together at the end
# of the run (a passing test's own output is captured), so every CI log shows them.
FIGURES = pytest.StashKey[list[str]]()


class Figures(Protocol):
    def __call__(self, name: str, **values: Any) -> None: ...


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES] = []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    def report(name: str, **values: Any) -> None:
        line = f"[{name}] " + ", ".join(f"{key}={value}" for key, value in values.items())
        request.config.stash[FIGURES].append(line)

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
