"""How long what the pipeline writes is kept, and the trim of its streams by age.

Every key has a bounded life or a rule (see jobs/keys.py): hashes and counters expire by TTL;
the contacted set is kept for good as the do-not-prospect-again list; the streams are never
capped on write (XADD MAXLEN would silently drop entries nobody has looked at) but trimmed here
by age, which the engine's cleanup cron calls:
- approvals: entries older than the draft TTL point at drafts that have expired;
- events: older than the event retention;
- dead letters are not trimmed by age here: an entry leaves by replay or an operator's purge.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from jobs.keys import Keys


@dataclass(frozen=True)
class StreamRule:
    stream: str
    max_age_s: int


def stream_rules(keys: Keys, *, draft_ttl_s: int, events_ttl_s: int) -> tuple[StreamRule, ...]:
    """The pipeline's streams and the age past which their entries go."""
    return (StreamRule(keys.approvals, draft_ttl_s), StreamRule(keys.events, events_ttl_s))


def min_id(now_ms: int, max_age_s: int) -> str:
    """The oldest stream id kept: entry ids start with their creation time in milliseconds."""
    return f"{max(0, now_ms - max_age_s * 1000)}-0"


async def trim_streams(redis: Redis, rules: Sequence[StreamRule], now_ms: int) -> dict[str, int]:
    """Trim each stream to its age (XTRIM MINID, exact); how many entries each lost."""
    async with redis.pipeline(transaction=False) as pipe:
        for rule in rules:
            pipe.xtrim(rule.stream, minid=min_id(now_ms, rule.max_age_s), approximate=False)
        trimmed = await pipe.execute()
    return {rule.stream: int(count) for rule, count in zip(rules, trimmed, strict=True)}
