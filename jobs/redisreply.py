"""redis-py's command replies, typed for its asyncio client.

redis-py types many commands once for its sync and asyncio clients alike, as `Awaitable[T] | T`,
and mypy cannot await that union. On `redis.asyncio.Redis` every command returns an awaitable,
so `reply` says so and keeps the reply's own type: `await reply(redis.hget(key, field))` is
`str | None`, where a `# type: ignore` would also hide any other mistake on the line. Wrap a
command in it only where its stub has that union (commands typed `ResponseT` are awaitable as is).
"""

from collections.abc import Awaitable
from typing import TypeVar, cast

T = TypeVar("T")


def reply(command: Awaitable[T] | T) -> Awaitable[T]:
    """The asyncio client's command as the awaitable it is (a cast: no work at run time)."""
    return cast(Awaitable[T], command)
