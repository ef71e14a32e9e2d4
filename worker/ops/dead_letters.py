"""Replay and purge dead letters (worker/runtime/deadletter.py), for an operator."""

import math
import re
from datetime import UTC, datetime

from pydantic import BaseModel

from worker.connections import JOB_EXPIRES_MS
from worker.ops.actor import Actor
from worker.ops.audit import audited
from worker.ops.context import Ops
from worker.ops.errors import Refused
from worker.runtime.deadletter import DeadLetter, DeadLetters, ReplayOutcome

# A stream entry id: milliseconds, optionally a dash and a sequence number.
ENTRY_ID = re.compile(r"^\d+(-\d+)?$")
MAX_REPLAY = 100_000

WORDS: dict[ReplayOutcome, str] = {
    "replayed": "replayed: enqueued again with fresh tries",
    "queued": "not replayed: the job is already queued",
    "gone": "not replayed: the entry is gone (purged, or dropped at the cap, meanwhile)",
    "already_replayed": "not replayed: already replayed",
    "not_replayable": "not replayed",
}


def dead_letter_stream(ops: Ops) -> DeadLetters:
    return DeadLetters(
        ops.redis,
        ops.keys,
        queue_name=ops.settings.queue_name,
        job_expires_ms=JOB_EXPIRES_MS,
        max_entries=ops.settings.dead_letter_max_entries,
    )


def checked_entry_id(entry_id: str) -> str:
    """Checked before Redis is asked: Redis answers a malformed id with an error, not nothing."""
    if ENTRY_ID.match(entry_id) is None:
        raise Refused(
            f"{entry_id!r} is not a dead-letter entry id (like 1764000000000-0, from "
            "prospect-worker dlq list)"
        )
    return entry_id


class ReplayReport(BaseModel):
    entry: str
    job_id: str
    outcome: ReplayOutcome
    reason: str | None = None  # why not replayed; for already_replayed, when and by whom

    def text(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.entry} {self.job_id}: {WORDS[self.outcome]}{why}"


def replays_text(reports: list[ReplayReport]) -> str:
    return "\n".join(report.text() for report in reports) or "nothing to replay"


async def replay(ops: Ops, actor: Actor, entry_ids: list[str]) -> list[ReplayReport]:
    """Enqueue each entry's job again with fresh tries; the entry leaves in the same step. An
    entry replayed before (by anyone, through either door) says so; an id that names no entry
    and no earlier replay refuses the whole call before anything is replayed."""
    target = "dead letters " + ", ".join(entry_ids[:20]) + (" ..." if len(entry_ids) > 20 else "")
    async with audited(ops, actor, "operate", "replay", target) as outcome:
        if len(entry_ids) > MAX_REPLAY:
            raise Refused(f"at most {MAX_REPLAY:,} entries at once")
        chosen = list(dict.fromkeys(checked_entry_id(entry_id) for entry_id in entry_ids))
        letters = dead_letter_stream(ops)
        found: list[DeadLetter | ReplayReport] = [await _find(letters, e) for e in chosen]
        reports = [
            item
            if isinstance(item, ReplayReport)
            else await _replay_one(letters, item, by=actor.name)
            for item in found
        ]
        done = sum(report.outcome == "replayed" for report in reports)
        outcome.line = f"replayed {done} of {len(reports)}" + "".join(
            f"; {report.text()}" for report in reports if report.outcome != "replayed"
        )
        return reports


async def _find(letters: DeadLetters, entry_id: str) -> DeadLetter | ReplayReport:
    letter = await letters.show(entry_id)
    if letter is not None:
        return letter
    earlier = await letters.replayed(entry_id)
    if earlier is None:
        raise Refused(f"no dead letter {entry_id!r}", reason="not_found")
    return ReplayReport(
        entry=entry_id,
        job_id=earlier.job_id,
        outcome="already_replayed",
        reason=_replayed_reason(earlier.at_ms, earlier.by),
    )


async def _replay_one(letters: DeadLetters, letter: DeadLetter, *, by: str) -> ReplayReport:
    outcome = await letters.replay(letter, by=by)
    reason = letter.replayable
    if outcome == "already_replayed":  # replayed by someone else since it was read
        earlier = await letters.replayed(letter.id)
        reason = _replayed_reason(earlier.at_ms, earlier.by) if earlier else None
    return ReplayReport(entry=letter.id, job_id=letter.job_id, outcome=outcome, reason=reason)


def _replayed_reason(at_ms: int, by: str) -> str:
    when = datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"at {when}" + (f" by {by}" if by else "")


class PurgeReport(BaseModel):
    purged: int
    older_than_s: float | None

    def text(self) -> str:
        return f"purged {self.purged} dead letter(s)"


async def purge(ops: Ops, actor: Actor, older_than_s: float | None) -> PurgeReport:
    """Remove entries older than `older_than_s`, or every entry with None (a door asks for a
    confirmation first)."""
    target = (
        "every dead letter"
        if older_than_s is None
        else f"dead letters older than {older_than_s:g} s"
    )
    async with audited(ops, actor, "operate", "purge", target) as outcome:
        if older_than_s is not None and not (math.isfinite(older_than_s) and older_than_s >= 0):
            raise Refused("the age must be a number of seconds, 0 or more")
        purged = await dead_letter_stream(ops).purge(older_than_s=older_than_s)
        report = PurgeReport(purged=purged, older_than_s=older_than_s)
        outcome.line = report.text()
        return report
