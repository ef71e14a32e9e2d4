"""cleanup: the hourly maintenance job that applies the retention rules (jobs/retention.py).

Hashes, counters, results and progress records expire by their own TTLs; the streams are the
one thing that grows without it, so this trims them by age and says how much went.
"""

import logging

from jobs.deps import Deps, Progress
from jobs.models import CleanupRequest, CleanupResult
from jobs.prospecting.store import now_ms
from jobs.retention import stream_rules

log = logging.getLogger("prospect_worker.cleanup")


async def cleanup(deps: Deps, request: CleanupRequest, progress: Progress) -> CleanupResult:
    rules = stream_rules(
        deps.keys,
        draft_ttl_s=deps.config.draft_ttl_s,
        events_ttl_s=deps.config.event_retention_s,
    )
    await progress.update("trimming", total=len(rules))
    trimmed = await deps.store.trim_streams(rules, now_ms())
    await progress.update("trimmed", done=len(rules), total=len(rules))
    if any(trimmed.values()):
        log.info("retention: trimmed %s", ", ".join(f"{k} {v}" for k, v in trimmed.items()))
    return CleanupResult(trimmed=trimmed)
