"""Connecting to Redis, for the worker and for the client alike: arq's pool settings, the
pipeline's own client, and how long a queued job lives."""

from arq.connections import RedisSettings
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from settings import Settings

# Redis or the network away: worth another try, never a bug.
INFRASTRUCTURE_ERRORS = (TimeoutError, OSError, RedisConnectionError, RedisTimeoutError)
# A fanned-out job must start within this long or it expires (arq's job key TTL).
JOB_EXPIRES_MS = 24 * 3600 * 1000


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url)


def redis_client(settings: Settings) -> Redis:
    """The pipeline's own client, with str replies (arq's pool stays on bytes)."""
    client: Redis = Redis.from_url(settings.redis_url, decode_responses=True)
    return client


def describe_redis(settings: RedisSettings) -> str:
    """Where the worker's Redis is, as an operator would write its URL, the password masked."""
    scheme = "rediss" if settings.ssl else "redis"
    secret = ":****" if settings.password else ""  # as the CLI masks it
    user = f"{settings.username or ''}{secret}@" if settings.username or secret else ""
    if settings.unix_socket_path:
        return f"unix://{user}{settings.unix_socket_path}?db={settings.database}"
    host = settings.host if isinstance(settings.host, str) else ",".join(map(str, settings.host))
    return f"{scheme}://{user}{host}:{settings.port}/{settings.database}"
