"""What every operation is handed: the settings, a queue client on the workers' Redis, the keys."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis

from settings import Settings
from worker.client import QueueClient
from worker.keys import WorkerKeys
from worker.registry import job_specs


@dataclass(frozen=True)
class Ops:
    settings: Settings
    client: QueueClient
    keys: WorkerKeys

    @property
    def redis(self) -> Redis:
        return self.client.redis


@asynccontextmanager
async def open_ops(settings: Settings, *, conn_retries: int = 0) -> AsyncIterator[Ops]:
    client = await QueueClient.connect(
        settings, specs=job_specs(settings), conn_retries=conn_retries
    )
    try:
        yield Ops(settings=settings, client=client, keys=WorkerKeys(settings.key_prefix))
    finally:
        await client.close()
