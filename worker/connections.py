"""Connecting to Redis, for the worker and for the client alike: arq's pool settings, the
pipeline's own client, and how long a queued job lives."""

from arq.connections import RedisSettings
from redis.asyncio import Redis

from settings import Settings

# A fanned-out job must start within this long or it expires (arq's job key TTL).
JOB_EXPIRES_MS = 24 * 3600 * 1000


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url)


def redis_client(settings: Settings) -> Redis:
    """The pipeline's own client, with str replies (arq's pool stays on bytes)."""
    client: Redis = Redis.from_url(settings.redis_url, decode_responses=True)
    return client
