#!/usr/bin/env python3
"""How long the console's pages take over HTTP, signed in, with 100,000 dead letters and 100,000
jobs queued: the operation (worker/ops) plus the gate, the session, the template. A benchmark to
rerun, not a test:

    .venv/bin/python scripts/bench_console_pages.py [--letters 100000] [--jobs 100000]

It fills a throwaway redis-server as scripts/bench_console.py does, then asks the console app
(in this process, through httpx's ASGI transport: no network in the figure) for each page
`--rounds` times, one after another: median and 95th percentile.
"""

import argparse
import sys
import time

import httpx
from argon2 import PasswordHasher
from bench_console import fill, fill_counts, fill_letters, fill_run, ms, on_throwaway_redis

from settings import Settings
from worker.console.app import create_app
from worker.console.users import ConsoleUser
from worker.ops.context import open_ops

PAGES = [
    ("Today", "/"),
    ("Today, the polled fragment", "/today/live"),
    ("Dead letters, first page", "/dead-letters"),
    ("Dead letters, error class TimeoutError", "/dead-letters?error=TimeoutError"),
    ("Drafts, pending", "/drafts"),
    ("Jobs in flight", "/jobs"),
    ("Charts' figures, 48 h", "/charts/data"),
]


async def bench(url: str, letters: int, jobs: int, rounds: int) -> None:
    settings = Settings(REDIS_URL=url, metrics_port=0, console={"session_secret": "b" * 40})
    async with open_ops(settings) as ops:
        await fill_letters(ops.redis, ops, letters)
        await fill(url, jobs)
        await fill_run(ops.redis, ops)
        await fill_counts(ops.redis, ops, hours=48)
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    user = ConsoleUser(name="bench", role="operator", password_hash=hasher.hash("bench"))
    app = create_app(settings, users={"bench": user})
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50_000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://console") as client,
    ):
        form = await client.get("/signin")
        token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        signed = await client.post(
            "/signin", data={"csrf_token": token, "user": "bench", "password": "bench"}
        )
        assert signed.status_code == 303, signed.text
        print(f"{letters:,} dead letters, {jobs:,} jobs queued; {rounds} rounds each, median, p95:")
        for name, path in PAGES:
            times, size = [], 0
            for _ in range(rounds):
                started = time.perf_counter()
                response = await client.get(path)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, (path, response.status_code)
                size = len(response.content)
            print(f"  {name:<42} {ms(times)}   ({size:,} bytes)")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--letters", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    return on_throwaway_redis(lambda url: bench(url, args.letters, args.jobs, args.rounds))


if __name__ == "__main__":
    sys.exit(main())
