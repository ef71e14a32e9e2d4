"""Reading a worker's metrics port over HTTP, as Prometheus does."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from worker.observability.ports import METRICS_PATH


@dataclass(frozen=True)
class Scrape:
    text: str
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    families: set[str]

    @classmethod
    def parse(cls, text: str) -> "Scrape":
        samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        families: set[str] = set()
        for family in text_string_to_metric_families(text):
            families.add(family.name)
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(text, samples, families)

    @property
    def names(self) -> set[str]:
        """Every name a query can use: sample names (`x_total`, `x_bucket`) and families."""
        return self.families | {name for name, _ in self.samples}

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, frozenset(labels.items()))]

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of `name` that has these labels (others free)."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


async def scrape(port: int) -> Scrape:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(base_url(port) + METRICS_PATH)
    response.raise_for_status()
    return Scrape.parse(response.text)


async def scrape_until(
    port: int, ready: Callable[[Scrape], bool], *, timeout_s: float = 60
) -> Scrape:
    """Scrape until `ready` holds (the sampler refreshes in the background); the last scrape
    goes to the assertion message when it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            last = await scrape(port)
            if ready(last):
                return last
        except httpx.TransportError:
            pass
        if loop.time() > deadline:
            raise AssertionError("metrics never reached the expected values")
        await asyncio.sleep(0.1)
