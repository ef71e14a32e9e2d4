"""Add an address to the suppression list by hand (jobs/outreach/suppression.py): it is never
emailed or prospected again, and a draft already approved for it is not sent."""

import re

from pydantic import BaseModel

from jobs.outreach.suppression import Suppressions, normalise_address
from worker.ops.actor import Actor
from worker.ops.audit import audited
from worker.ops.context import Ops
from worker.ops.errors import Refused
from worker.ops.sends import now_ms

ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ADDRESS_CHARS = 254  # RFC 5321's path limit
REASON_CHARS = 500


class SuppressAnswer(BaseModel):
    address: str  # as kept: trimmed and lower-cased
    added: bool  # False: it was suppressed already, and keeps its first reason and time
    reason: str  # read back: why it is suppressed
    at_ms: int | None  # read back: since when

    def text(self) -> str:
        if self.added:
            return f"suppressed {self.address}: {self.reason}"
        return f"{self.address} was suppressed already ({self.reason}): nothing changed"


async def suppress(ops: Ops, actor: Actor, address: str, reason: str) -> SuppressAnswer:
    async with audited(ops, actor, "suppression", "suppress", address[:ADDRESS_CHARS]) as outcome:
        kept = normalise_address(address)
        if len(kept) > ADDRESS_CHARS or ADDRESS.match(kept) is None:
            raise Refused(f"{address!r} is not an email address")
        why = reason.strip()
        if not 0 < len(why) <= REASON_CHARS or not why.isprintable():
            raise Refused(f"the reason must be one line of 1 to {REASON_CHARS} characters")
        suppressions = Suppressions(ops.redis, ops.keys)
        added = await suppressions.add(kept, reason=why, now_ms=now_ms(), event="suppressed")
        entry = await suppressions.lookup(kept)
        answer = SuppressAnswer(
            address=kept,
            added=added,
            reason=entry.reason if entry else why,
            at_ms=entry.at_ms if entry else None,
        )
        outcome.line = answer.text()
        return answer
