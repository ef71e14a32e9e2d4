"""A draft's approval state, kept in the draft record itself (`pw:draft:<company id>`).

The draft id is the company id: the pipeline drafts a company once (the contacted set), so the
record's key names the draft. States:

    pending --approve--> approved --send_outreach--> sending --> sent
       |                    |  ^                        |------> unknown (a person decides)
       +------reject--------+--|--> rejected            +------> failed (5xx, suppressed)
                            |  |
                            |  +--approve (or a replayed send)--+
                            +--its send job failed for good--> send_failed

Every transition is one Lua script that checks the state it leaves, so two people (or a person
and an application) acting at once cannot both win, and an edit never lands on a draft that is
already being sent.
"""

from typing import Literal, get_args

from pydantic import BaseModel
from redis.asyncio import Redis

from jobs.keys import Keys
from jobs.redisreply import reply

# send_failed: approved, but its send job failed for good before any SMTP transaction.
DraftState = Literal[
    "pending", "approved", "rejected", "sending", "sent", "unknown", "failed", "send_failed"
]
STATES: tuple[DraftState, ...] = get_args(DraftState)
Transition = Literal["done", "missing", "wrong_state"]

# KEYS: draft, events, unknown sends. ARGV: to state, allowed from states (comma list), now_ms,
# event type ('' for none), then field/value pairs to set.
_TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', ''} end
local allowed = false
for from in string.gmatch(ARGV[2], '[^,]+') do
  if from == state then allowed = true end
end
if not allowed then return {'wrong_state', state} end
redis.call('HSET', KEYS[1], 'state', ARGV[1], ARGV[1] .. '_ms', ARGV[3])
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local company = string.match(KEYS[1], ':draft:(.+)$')
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'type', ARGV[4], 'company_id', company, 'ts_ms', ARGV[3])
end
if state == 'unknown' then redis.call('ZREM', KEYS[3], company) end
return {'done', state}
"""


class DraftRecord(BaseModel):
    id: str  # the company id
    state: DraftState
    to: str
    subject: str
    body: str
    run_id: str = ""
    stream_id: str = ""  # the approval stream entry
    score: int | None = None
    writer: str = ""
    queued_ms: int | None = None
    approved_ms: int | None = None
    rejected_ms: int | None = None
    sent_ms: int | None = None
    unknown_ms: int | None = None
    failed_ms: int | None = None
    reason: str | None = None  # why rejected, failed or unknown
    message_id: str | None = None
    attempts: int = 0  # SMTP transactions started
    reply_kind: str | None = None
    replied_ms: int | None = None


def parse_draft(draft_id: str, fields: dict[str, str]) -> DraftRecord | None:
    if not fields:
        return None
    known = set(DraftRecord.model_fields)
    data = {name: value for name, value in fields.items() if name in known and value != ""}
    # Drafts queued before states existed have none (status=pending_approval): pending.
    return DraftRecord.model_validate(
        {**data, "id": draft_id, "state": data.get("state", "pending")}
    )


class DraftBook:
    """List, show, approve and reject drafts; resolve a send whose outcome is unknown."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._transition = redis.register_script(_TRANSITION)

    async def show(self, draft_id: str) -> DraftRecord | None:
        fields = await reply(self._redis.hgetall(self._keys.draft(draft_id)))
        return parse_draft(draft_id, fields)

    async def find(self, state: DraftState | None = None, limit: int = 1_000) -> list[DraftRecord]:
        """Drafts oldest first, optionally in one state. A scan: for an operator, not a hot path."""
        prefix = self._keys.draft("")
        ids = sorted(
            [key.removeprefix(prefix) async for key in self._redis.scan_iter(prefix + "*")]
        )
        found: list[DraftRecord] = []
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            async with self._redis.pipeline(transaction=False) as pipe:
                for draft_id in chunk:
                    pipe.hgetall(self._keys.draft(draft_id))
                rows = await pipe.execute()
            for draft_id, fields in zip(chunk, rows, strict=True):
                record = parse_draft(draft_id, fields)
                if record is not None and (state is None or record.state == state):
                    found.append(record)
        found.sort(key=lambda record: (record.queued_ms or 0, record.id))
        return found[:limit]

    async def approve(
        self, draft_id: str, now_ms: int, *, subject: str | None = None, body: str | None = None
    ) -> tuple[Transition, str]:
        """pending (or approved again; or send_failed, to send again) -> approved. A reason
        (why a send failed) goes. Edits land only on a draft that awaits an approval (pending,
        or send_failed): once approved its send is queued, and the text a person approved is
        the text that goes; the send reads it only after its claim, in the same record."""
        edits: list[str] = ["reason", ""]
        if subject is not None:
            edits += ["subject", subject]
        if body is not None:
            edits += ["body", body]
        allowed: tuple[DraftState, ...] = ("pending", "send_failed")
        if subject is None and body is None:
            allowed += ("approved",)
        return await self._move(draft_id, "approved", allowed, now_ms, "", edits)

    async def send_failed(self, draft_id: str, now_ms: int, reason: str) -> tuple[Transition, str]:
        """Its send job failed for good without an SMTP outcome (sending off, the server never
        reached): no longer `approved` beside drafts that wait for the cap or the throttle."""
        fields = ["reason", f"send failed for good: {reason}"]
        return await self._move(draft_id, "send_failed", ("approved",), now_ms, "", fields)

    async def reject(self, draft_id: str, now_ms: int, reason: str) -> tuple[Transition, str]:
        return await self._move(
            draft_id, "rejected", ("pending", "approved"), now_ms, "rejected", ["reason", reason]
        )

    async def resolve(self, draft_id: str, now_ms: int, *, sent: bool) -> tuple[Transition, str]:
        """A person's answer for a send whose outcome was unknown: it was delivered (sent), or
        it was not and may go again (approved: the caller enqueues a new send)."""
        if sent:
            return await self._move(draft_id, "sent", ("unknown",), now_ms, "sent", [])
        fields = ["reason", "resolved: retry"]
        return await self._move(draft_id, "approved", ("unknown",), now_ms, "", fields)

    async def _move(
        self,
        draft_id: str,
        to: DraftState,
        allowed: tuple[DraftState, ...],
        now_ms: int,
        event: str,
        fields: list[str],
    ) -> tuple[Transition, str]:
        outcome, before = await self._transition(
            keys=[self._keys.draft(draft_id), self._keys.events, self._keys.unknown_sends],
            args=[to, ",".join(allowed), now_ms, event, *fields],
        )
        return outcome, before
