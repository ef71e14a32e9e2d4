"""The record of inbound replies: each reply's event and its draft's update, written once."""

from redis.asyncio import Redis

from jobs.keys import Keys
from jobs.outreach.classify import Classification, ReplyFacts
from jobs.prospecting.store import now_ms

REPLY_MARKER_TTL_S = 30 * 86_400

# KEYS: reply marker, draft (may not exist), events
# ARGV: now_ms, kind, draft id ('' when unmatched), sender, reason, classifier, marker ttl,
#       reply id
_RECORD = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[7]) then return 0 end
if ARGV[3] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'reply_kind', ARGV[2], 'replied_ms', ARGV[1],
    'reply_reason', ARGV[5])
end
redis.call('XADD', KEYS[3], '*', 'type', 'replied', 'company_id', ARGV[3], 'kind', ARGV[2],
  'from', ARGV[4], 'reason', ARGV[5], 'classifier', ARGV[6], 'reply_id', ARGV[8],
  'ts_ms', ARGV[1])
return 1
"""


class ReplyLog:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._keys = keys
        self._record = redis.register_script(_RECORD)

    async def record(
        self, reply_id: str, draft_id: str | None, facts: ReplyFacts, found: Classification
    ) -> bool:
        keys = self._keys
        recorded = await self._record(
            keys=[keys.reply(reply_id), keys.draft(draft_id or ""), keys.events],
            args=[
                now_ms(),
                found.kind,
                draft_id or "",
                facts.sender,
                found.reason,
                found.classifier,
                REPLY_MARKER_TTL_S,
                reply_id,
            ],
        )
        return bool(recorded)
