"""Every Lua script the worker's objects hold, found on the objects themselves, loaded at start.

An object that runs a script keeps the `AsyncScript` that `redis.register_script` returned as
an attribute; `find_scripts` walks the project's objects from the roots it is given (their
attributes, dataclass fields and containers) and collects every one, so a new scripted object
needs no list of owners kept by hand. Objects of other libraries (a Redis client, an HTTP
client) are not walked into.
"""

from collections.abc import Iterator
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

PROJECT_PACKAGES = ("jobs", "worker")


def _children(value: object, packages: tuple[str, ...]) -> Iterator[object]:
    if isinstance(value, dict):
        yield from value.values()
    elif isinstance(value, list | tuple | set | frozenset):
        yield from value
    elif type(value).__module__.split(".")[0] in packages and not isinstance(value, type):
        yield from getattr(value, "__dict__", {}).values()
        for name in getattr(type(value), "__slots__", ()):
            if hasattr(value, name):
                yield getattr(value, name)


def find_scripts(*roots: Any, packages: tuple[str, ...] = PROJECT_PACKAGES) -> list[AsyncScript]:
    """The scripts held by the roots and the objects they hold whose classes are defined in
    `packages`, each once, in the order they are met."""
    found: dict[int, AsyncScript] = {}
    seen: set[int] = set()
    stack: list[object] = list(reversed(roots))
    while stack:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, AsyncScript):
            found.setdefault(id(value), value)
            continue
        stack.extend(reversed(list(_children(value, packages))))
    return list(found.values())


async def preload_scripts(redis: Redis, *roots: Any) -> None:
    """Load every Lua script the roots hold once at start: a Redis that cannot run them fails
    here, at once, and fakeredis's in-process server (which drops the connection on a NOSCRIPT
    reply instead of letting the client load the script) never sees an unknown EVALSHA."""
    for script in find_scripts(*roots):
        await redis.script_load(script.script)
