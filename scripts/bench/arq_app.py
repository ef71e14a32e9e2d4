"""The raw-arq worker of the cases that run whole processes: plain arq, no engine, no limits.

    arq scripts.bench.arq_app.ArqSettings     (REDIS_URL, BENCH_PROVIDER_URL, BENCH_MAX_JOBS)

Its jobs do what the project's do at the far end, without the project's code in between:
- `cleanup`: nothing (the idle-start case, and the reply behind the backlog);
- `prospect`: one domain search on the fake provider (what a prospect asks the email finder);
- `draft`: one chat completion on the fake provider (what a prospect asks the LLM), with no
  rate limit of its own: the provider sees whatever arq's concurrency lets through.
"""

import os
from typing import Any, ClassVar

import httpx
import orjson
from arq.connections import RedisSettings
from arq.worker import func

POLL_S = 0.05  # the project's default poll, so the two workers poll alike


async def cleanup(ctx: dict[str, Any]) -> None:
    return None


async def prospect(ctx: dict[str, Any], domain: str) -> int:
    client: httpx.AsyncClient = ctx["http"]
    answer = await client.get("/v2/domain-search", params={"domain": domain})
    answer.raise_for_status()
    return len(answer.json()["data"]["emails"])


async def draft(ctx: dict[str, Any], company: str) -> str:
    client: httpx.AsyncClient = ctx["http"]
    request = {
        "model": "bench",
        "messages": [{"role": "user", "content": f"Write to {company} ({company}.example)"}],
    }
    answer = await client.post("/v1/chat/completions", json=request)
    answer.raise_for_status()
    content: str = answer.json()["choices"][0]["message"]["content"]
    return content[:40]


async def startup(ctx: dict[str, Any]) -> None:
    url = os.environ.get("BENCH_PROVIDER_URL", "http://127.0.0.1:1")
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    ctx["http"] = httpx.AsyncClient(base_url=url, limits=limits, timeout=30)
    print("prospect-worker ready (raw arq)", flush=True)


async def shutdown(ctx: dict[str, Any]) -> None:
    if "http" in ctx:
        await ctx["http"].aclose()


class ArqSettings:
    functions: ClassVar = [func(cleanup), func(prospect), func(draft)]
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://127.0.0.1:1"))
    poll_delay = POLL_S
    max_jobs = int(os.environ.get("BENCH_MAX_JOBS", "10"))  # arq's own default unless set
    job_serializer = orjson.dumps
    job_deserializer = orjson.loads
    on_startup = startup
    on_shutdown = shutdown
