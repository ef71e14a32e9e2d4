"""The outbox: a send recorded before the SMTP transaction, so it happens at most once.

The idempotency key is the draft itself (its record, `pw:draft:<id>`, and its Message-ID): one
draft, one send. `claim` moves approved -> sending under a lease, in one script that also checks
the suppression list and counts the send against the daily cap shared by every replica. Only
the holder of the claim's token may finish it: sent, released (proved not delivered: approved
again), failed, or unknown. A rerun that finds `sending` with its lease lapsed cannot know
whether the worker died before or after the server accepted the message, so it never sends: it
marks the draft `unknown` for a person to resolve.
"""

from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from jobs.keys import Keys

SENT_COUNTER_TTL_S = 3 * 86_400

ClaimOutcome = Literal[
    "send",  # claimed: go ahead with the SMTP transaction
    "sent",  # already sent: nothing to do
    "busy",  # another try holds a live lease
    "lapsed",  # a try died mid-send: now unknown
    "unknown",  # left for a person
    "rejected",
    "failed",
    "suppressed",  # the address (or its domain) is suppressed: now failed
    "over_cap",  # the day's sending cap is spent
    "missing",
]

# KEYS: draft, suppressed addresses, suppressed domains, sent counter (the day's), message index,
#       events, unknown sends
# ARGV: now_ms, lease_ms, token, cap, counter ttl s, message id, draft ttl s
_CLAIM = """
local d = KEYS[1]
local f = redis.call('HMGET', d, 'state', 'lease_until_ms', 'to')
local state, now = f[1], tonumber(ARGV[1])
if not state then return {'missing', ''} end
if state == 'pending_approval' then state = 'pending' end
if state == 'sending' then
  local lease = tonumber(f[2] or '0')
  if lease > now then return {'busy', tostring(lease - now)} end
  redis.call('HSET', d, 'state', 'unknown', 'unknown_ms', ARGV[1],
    'reason', 'the send lease lapsed: the worker stopped mid-send; it may have been delivered')
  redis.call('HDEL', d, 'lease_until_ms', 'token')
  local company = string.match(d, ':draft:(.+)$')
  redis.call('XADD', KEYS[6], '*', 'type', 'send_unknown', 'company_id', company,
    'ts_ms', ARGV[1])
  redis.call('ZADD', KEYS[7], ARGV[1], company)
  return {'lapsed', ''}
end
if state ~= 'pending' and state ~= 'approved' and state ~= 'send_failed' then
  return {state, ''}
end
if state ~= 'approved' then
  -- Enqueueing send_outreach is how an application approves, and a replayed send sends a
  -- draft whose send had failed for good (send_outreach records that first; this covers a
  -- draft met here all the same).
  redis.call('HSET', d, 'state', 'approved', 'approved_ms', ARGV[1])
end
local to = string.lower(f[3] or '')
local domain = string.match(to, '@([^@]+)$') or ''
if redis.call('SISMEMBER', KEYS[2], to) == 1 or redis.call('SISMEMBER', KEYS[3], domain) == 1 then
  redis.call('HSET', d, 'state', 'failed', 'failed_ms', ARGV[1], 'reason', 'suppressed')
  return {'suppressed', ''}
end
-- The daily cap counts sends started, on every replica. An unknown send counts too: it may
-- have gone out.
if redis.call('INCR', KEYS[4]) > tonumber(ARGV[4]) then
  redis.call('DECR', KEYS[4])
  return {'over_cap', ''}
end
if redis.call('TTL', KEYS[4]) == -1 then redis.call('EXPIRE', KEYS[4], ARGV[5]) end
redis.call('HSET', d, 'state', 'sending', 'sending_ms', ARGV[1], 'token', ARGV[3],
  'lease_until_ms', tostring(now + tonumber(ARGV[2])), 'message_id', ARGV[6])
redis.call('HINCRBY', d, 'attempts', 1)
redis.call('SET', KEYS[5], string.match(d, ':draft:(.+)$'), 'EX', ARGV[7])
return {'send', ''}
"""

# KEYS: draft, sent counter, events, unknown sends
# ARGV: token, to state (sent | approved | failed | unknown), now_ms, reason, event type
# Only the claim's holder finishes it. A send that was released or failed gives its place under
# the cap back: it did not go out.
_FINISH = """
local d = KEYS[1]
local f = redis.call('HMGET', d, 'state', 'token')
if f[1] ~= 'sending' or f[2] ~= ARGV[1] then return f[1] or 'missing' end
redis.call('HSET', d, 'state', ARGV[2], ARGV[2] .. '_ms', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', d, 'reason', ARGV[4]) end
redis.call('HDEL', d, 'lease_until_ms', 'token')
if ARGV[2] == 'approved' or ARGV[2] == 'failed' then
  if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
end
if ARGV[2] == 'unknown' then
  redis.call('ZADD', KEYS[4], ARGV[3], string.match(d, ':draft:(.+)$'))
end
if ARGV[5] ~= '' then
  local company = string.match(d, ':draft:(.+)$')
  redis.call('XADD', KEYS[3], '*', 'type', ARGV[5], 'company_id', company,
    'message_id', redis.call('HGET', d, 'message_id') or '', 'reason', ARGV[4], 'ts_ms', ARGV[3])
end
return 'done'
"""

Finish = Literal["sent", "approved", "failed", "unknown"]


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    wait_ms: int = 0  # for "busy": until the other try's lease lapses


class Outbox:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)

    async def claim(
        self,
        draft_id: str,
        *,
        token: str,
        now_ms: int,
        lease_ms: int,
        day: str,
        cap: int,
        message_id: str,
        draft_ttl_s: int,
    ) -> Claim:
        keys = self._keys
        outcome, wait = await self._claim(
            keys=[
                keys.draft(draft_id),
                keys.suppressed_addresses,
                keys.suppressed_domains,
                keys.sent(day),
                keys.message(message_id),
                keys.events,
                keys.unknown_sends,
            ],
            args=[
                now_ms,
                lease_ms,
                token,
                cap,
                SENT_COUNTER_TTL_S,
                message_id,
                draft_ttl_s,
            ],
        )
        return Claim(outcome, int(wait) if wait else 0)

    async def finish(
        self,
        draft_id: str,
        *,
        token: str,
        to: Finish,
        now_ms: int,
        day: str,
        reason: str = "",
        event: str = "",
    ) -> str:
        """'done', or the state found when this token no longer holds the claim."""
        keys = self._keys
        result: str = await self._finish(
            keys=[keys.draft(draft_id), keys.sent(day), keys.events, keys.unknown_sends],
            args=[token, to, now_ms, reason, event],
        )
        return result

    async def sent_on(self, day: str) -> int:
        return int(await self._redis.get(self._keys.sent(day)) or 0)

    async def draft_for_message(self, message_id: str) -> str | None:
        found: str | None = await self._redis.get(self._keys.message(message_id))
        return found
