"""The audit log: every action a person took through either door, who, what, when, from where.

One bounded Redis stream (`WorkerKeys.audit`), newest entries kept, read newest first a page at
a time. Every operation runs inside `audited`, which checks the actor's permission and writes
exactly one entry whatever happens: the answer's line, or that it was refused and why.
"""

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from worker.keys import WorkerKeys
from worker.ops.actor import GRANTS, Actor, Door, Permission, Role
from worker.ops.context import Ops
from worker.ops.errors import Refused

# Near this many newest entries are kept (XADD MAXLEN ~): at a few hundred actions a day, years.
MAX_ENTRIES = 100_000
FIELD_CHARS = 2_000  # a target or outcome line is cut to this: an entry stays small
ENTRY_ID = re.compile(r"^\d+(-\d+)?$")

# What each permission lets a person do, for the line that refuses it.
DOES: dict[Permission, str] = {
    "read": "read",
    "drafts": "approve, edit or reject drafts",
    "suppression": "add to the suppression list",
    "operate": "operate the queue",
}


class AuditEntry(BaseModel):
    id: str  # the stream entry id: where the next page starts (`before`)
    at_ms: int
    actor: str
    role: Role
    door: Door
    source: str
    action: str
    target: str
    outcome: str  # the answer's line, or `refused (<reason>): <why>`


class AuditLog:
    def __init__(self, redis: Redis, keys: WorkerKeys, *, max_entries: int = MAX_ENTRIES) -> None:
        self._redis = redis
        self._key = keys.audit
        self._max_entries = max_entries

    async def record(self, actor: Actor, action: str, target: str, outcome: str) -> str:
        fields = {
            "at_ms": int(time.time() * 1000),
            "actor": actor.name[:FIELD_CHARS],
            "role": actor.role,
            "door": actor.door,
            "source": actor.source[:FIELD_CHARS],
            "action": action,
            "target": target[:FIELD_CHARS],
            "outcome": outcome[:FIELD_CHARS],
        }
        entry = await self._redis.xadd(
            self._key,
            fields,  # type: ignore[arg-type]  # redis-py's own annotation is narrower than it takes
            maxlen=self._max_entries,
            approximate=True,
        )
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    async def page(self, limit: int = 50, before: str | None = None) -> list[AuditEntry]:
        """Up to `limit` entries, newest first, older than the entry `before` when given."""
        if before is not None and ENTRY_ID.match(before) is None:
            raise Refused(f"{before!r} is not an audit entry id (like 1764000000000-0)")
        if not 1 <= limit <= 10_000:
            raise Refused("the limit is 1 to 10,000 entries")
        top = "+" if before is None else f"({before}"
        rows = await self._redis.xrevrange(self._key, top, "-", count=limit)
        return [_parse(entry_id, fields) for entry_id, fields in rows]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse(entry_id: str | bytes, raw: dict[str | bytes, str | bytes]) -> AuditEntry:
    fields = {_text(name): _text(value) for name, value in raw.items()}
    return AuditEntry.model_validate(
        {**fields, "id": _text(entry_id), "at_ms": int(fields.get("at_ms", 0))}
    )


def forbidden(actor: Actor, permission: Permission) -> Refused:
    allowed = " or ".join(role for role, grants in GRANTS.items() if permission in grants)
    article = "an" if actor.role[0] in "aeiou" else "a"
    return Refused(
        f"{actor.name} is {article} {actor.role} and may not {DOES[permission]} "
        f"(it takes the {allowed} role)",
        reason="forbidden",
    )


@dataclass
class Outcome:
    """What the operation says it did; `audited` writes it when the block ends."""

    line: str = "done"


@asynccontextmanager
async def audited(
    ops: Ops, actor: Actor, permission: Permission, action: str, target: str
) -> AsyncIterator[Outcome]:
    """Refuse an actor without `permission`, run the block, and write exactly one entry: the
    block's `Outcome.line`, or the refusal, or the error that stopped it."""
    log = AuditLog(ops.redis, ops.keys)
    if not actor.may(permission):
        refusal = forbidden(actor, permission)
        await log.record(actor, action, target, f"refused ({refusal.reason}): {refusal}")
        raise refusal
    outcome = Outcome()
    try:
        yield outcome
    except Refused as exc:
        await log.record(actor, action, target, f"refused ({exc.reason}): {exc}")
        raise
    except Exception as exc:
        # What stopped it may have been Redis itself: the entry is written if it can be.
        with suppress(RedisError):
            await log.record(actor, action, target, f"error: {type(exc).__name__}: {exc}")
        raise
    await log.record(actor, action, target, outcome.line)
