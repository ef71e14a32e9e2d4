"""Where the daily run's discovery checkpoints its paging: the cursor and each page's companies,
in one hash per run (jobs/prospecting/paging.py reads and writes it; the run's ledger names it).
"""

from typing import Protocol

from pydantic import BaseModel, ConfigDict, TypeAdapter
from redis.asyncio import Redis

from jobs.models import Company
from jobs.redisreply import reply

_COMPANIES = TypeAdapter(list[Company])


class Cursor(BaseModel):
    """Where paging stands: the next page's token, pages read, and whether it has ended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str | None = None
    pages: int = 0
    finished: bool = False
    incomplete: str | None = None  # why discovery ended before the last page


class PagingLog(Protocol):
    async def load(self) -> tuple[list[Company], Cursor]: ...

    async def save(self, page: int, companies: list[Company], cursor: Cursor) -> None: ...


class RedisPagingLog:
    """A hash per run: `cursor`, and `page:<n>` with that page's new companies, so saving a
    page writes that page only (not every company read so far)."""

    def __init__(self, redis: Redis, key: str, ttl_s: int) -> None:
        self._redis = redis
        self._key = key
        self._ttl_s = ttl_s

    async def load(self) -> tuple[list[Company], Cursor]:
        raw: dict[str, str] = await reply(self._redis.hgetall(self._key))
        if "cursor" not in raw:
            return [], Cursor()
        pages = sorted(
            (int(name.removeprefix("page:")), value)
            for name, value in raw.items()
            if name.startswith("page:")
        )
        companies = [company for _, value in pages for company in _COMPANIES.validate_json(value)]
        return companies, Cursor.model_validate_json(raw["cursor"])

    async def save(self, page: int, companies: list[Company], cursor: Cursor) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._key,
                mapping={
                    f"page:{page}": _COMPANIES.dump_json(companies).decode(),
                    "cursor": cursor.model_dump_json(),
                },
            )
            pipe.expire(self._key, self._ttl_s)
            await pipe.execute()
