"""The suppression list: addresses (and optionally whole domains) never emailed again.

An unsubscribe, a hard bounce and, by a setting, a not-interested reply put the address here;
nothing takes it off but a person (SREM). The sets have no expiry on purpose: "unsubscribe" means
for good. The daily run checks it before drafting and again in the script that queues a draft;
`send_outreach` checks it in the script that starts a send, so a draft approved before the
unsubscribe arrived is still not sent.
"""

from pydantic import BaseModel
from redis.asyncio import Redis

from jobs.keys import Keys
from jobs.redisreply import reply

# KEYS: addresses, domains, reasons, events
# ARGV: address, domain ('' to leave the domain alone), reason, now_ms, event type, company id
_ADD = """
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[3] .. ' ' .. ARGV[4])
if ARGV[2] ~= '' then
  redis.call('SADD', KEYS[2], ARGV[2])
  redis.call('HSETNX', KEYS[3], '@' .. ARGV[2], ARGV[3] .. ' ' .. ARGV[4])
end
if added == 1 and ARGV[5] ~= '' then
  redis.call('XADD', KEYS[4], '*', 'type', ARGV[5], 'company_id', ARGV[6], 'address', ARGV[1],
    'reason', ARGV[3], 'ts_ms', ARGV[4])
end
return added
"""


class Suppression(BaseModel):
    """One entry of the list: the address (or `@domain`), why and since when."""

    address: str
    reason: str
    at_ms: int | None  # None for an entry written without its time


def parse_reason(address: str, kept: str) -> Suppression:
    """The reasons hash keeps `<reason> <ms>` in one value (written once, by HSETNX)."""
    reason, _, when = kept.rpartition(" ")
    if reason and when.isdigit():
        return Suppression(address=address, reason=reason, at_ms=int(when))
    return Suppression(address=address, reason=kept, at_ms=None)


def normalise_address(address: str) -> str:
    return address.strip().lower()


def domain_of(address: str) -> str:
    return normalise_address(address).rpartition("@")[2]


class Suppressions:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._add = redis.register_script(_ADD)

    async def add(
        self,
        address: str,
        *,
        reason: str,
        now_ms: int,
        whole_domain: bool = False,
        event: str = "",
        company_id: str = "",
    ) -> bool:
        """Suppress `address` (and its domain when `whole_domain`); True when it is new. The
        event (`unsubscribed`, `bounced`) is written only the first time, in the same step."""
        address = normalise_address(address)
        added = await self._add(
            keys=[
                self._keys.suppressed_addresses,
                self._keys.suppressed_domains,
                self._keys.suppression_reasons,
                self._keys.events,
            ],
            args=[
                address,
                domain_of(address) if whole_domain else "",
                reason,
                now_ms,
                event,
                company_id,
            ],
        )
        return bool(added)

    async def is_suppressed(self, address: str) -> bool:
        address = normalise_address(address)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sismember(self._keys.suppressed_addresses, address)
            pipe.sismember(self._keys.suppressed_domains, domain_of(address))
            by_address, by_domain = await pipe.execute()
        return bool(by_address or by_domain)

    async def reason(self, address: str) -> str | None:
        """`<reason> <ms>` as kept; `lookup` reads it apart."""
        kept = await self._kept(address)
        return kept[1] if kept else None

    async def lookup(self, address: str) -> Suppression | None:
        """Why and since when `address` is suppressed (by itself, else by its domain)."""
        kept = await self._kept(address)
        return parse_reason(*kept) if kept else None

    async def _kept(self, address: str) -> tuple[str, str] | None:
        address = normalise_address(address)
        names = [address, "@" + domain_of(address)]
        found = await reply(self._redis.hmget(self._keys.suppression_reasons, names))
        return next(((name, kept) for name, kept in zip(names, found, strict=True) if kept), None)
