"""The console's lists, paged on the server: drafts for review, dead letters, the outbox, the
suppression list. A page is `Page[T]`: its items, the cursor of the next page (None on the
last), and the total when Redis knows it without counting.

Each read is bounded whatever Redis holds. Drafts page along the approval stream (one entry per
draft queued, trimmed with the drafts). Dead letters page along their stream newest first; a
filter (job type, error class) is applied in Redis over at most `DEAD_LETTER_WINDOW` entries per
page, and a page that stopped at that bound says so (`Page.note`), its cursor going on from
there. (An index per type and class would answer a rare filter at once, at the price of keeping
it through replays, purges and the stream's cap; not built.) The outbox reads its own index of
unknown sends; the suppression list pages with SSCAN.
"""

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from jobs.models import Company, Enrichment, FanoutPlan, Score
from jobs.outreach.drafts import DraftRecord, DraftState, parse_draft
from jobs.outreach.message import draft_token, message_headers, message_id
from jobs.redisreply import reply
from worker.app import sender_identity
from worker.ops.context import Ops
from worker.ops.errors import Refused
from worker.runtime.deadletter import DeadLetter, DeadLetters

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# Entries a filtered dead-letter page looks at, at most, and in one step in Redis. A page that
# finds few matches looks at all of them: 5,000 took a median 124 ms on a loaded machine
# (scripts/bench_console.py, docs/benchmarks.md), over the 150 ms a page may take.
DEAD_LETTER_WINDOW = 3_000
DEAD_LETTER_STEP = 500
# Approval entries a drafts page looks at, at most, to fill a page of one state.
DRAFT_WINDOW = 2_000
MAX_LIMIT = 500
_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None  # give it back for the next page; None: this is the last
    total: int | None = None  # every item of the list, when known without counting
    note: str | None = None  # what the page did not look at, when a bound stopped it


class EmailPreview(BaseModel):
    """The message as the sender would build it from the draft now, but for its Date."""

    headers: dict[str, str]
    body: str


class DraftItem(BaseModel):
    """Everything a reviewer needs for one draft; the evidence is kept for 7 days
    (the prospect's checkpoints), the draft itself longer."""

    draft: DraftRecord  # the text, the approval and send state, the attempts
    email: EmailPreview
    company: Company | None  # from the run's plan
    score: Score | None  # the ICP score with its breakdown
    enrichment: Enrichment | None  # the website's evidence and the contact


class DeadLetterItem(DeadLetter):
    replay_refused: str | None  # why a replay cannot help; None when it can


class OutboxItem(BaseModel):
    draft: DraftRecord
    unknown_since: datetime


class SuppressionItem(BaseModel):
    address: str
    reason: str | None
    since: datetime | None


async def drafts_page(
    ops: Ops, state: DraftState | None = None, cursor: str | None = None, limit: int = 50
) -> Page[DraftItem]:
    """Drafts oldest first (the order they were queued), optionally in one state."""
    limit = _limit(limit)
    start = "-" if cursor is None else f"({_entry_id(cursor)}"
    records: list[DraftRecord] = []
    seen, last, exhausted = 0, cursor, False
    while len(records) < limit and seen < DRAFT_WINDOW and not exhausted:
        ask = min(200, DRAFT_WINDOW - seen)
        batch = await ops.redis.xrange(ops.keys.approvals, start, "+", count=ask)
        async with ops.redis.pipeline(transaction=False) as pipe:
            for _, fields in batch:
                pipe.hgetall(ops.keys.draft(fields.get("company_id", "")))
            drafts = await pipe.execute()
        looked = 0
        for (entry_id, fields), raw in zip(batch, drafts, strict=True):
            looked += 1
            last, start = entry_id, f"({entry_id}"
            record = parse_draft(fields.get("company_id", ""), raw)
            # Gone (expired), or queued again since under another entry: not this entry's.
            if record is None or record.stream_id != entry_id:
                continue
            if state is None or record.state == state:
                records.append(record)
                if len(records) == limit:
                    break
        seen += looked
        exhausted = len(batch) < ask and looked == len(batch)
    # The approval stream's length: drafts expire a little before their entries are trimmed.
    total = int(await ops.redis.xlen(ops.keys.approvals)) if state is None else None
    note = None
    if not exhausted and len(records) < limit:
        note = f"looked at {seen:,} drafts for this page (the most one page looks at); go on"
    return Page(
        items=await _draft_items(ops, records),
        next_cursor=None if exhausted else last,
        total=total,
        note=note,
    )


async def _draft_items(ops: Ops, records: Sequence[DraftRecord]) -> list[DraftItem]:
    if not records:
        return []
    runs = sorted({record.run_id for record in records if record.run_id})
    async with ops.redis.pipeline(transaction=False) as pipe:
        for record in records:
            pipe.hmget(ops.keys.prospect(record.run_id, record.id), ["score", "enrichment"])
        for run_id in runs:
            pipe.get(ops.keys.run_plan(run_id))
        replies = await pipe.execute()
    checkpoints, plans = replies[: len(records)], replies[len(records) :]
    companies: dict[tuple[str, str], Company] = {}
    for run_id, raw in zip(runs, plans, strict=True):
        plan = _model(FanoutPlan, raw)
        for company in plan.chosen if plan else ():
            companies[(run_id, company.id)] = company
    identity = sender_identity(ops.settings)
    items = []
    for record, (score, enrichment) in zip(records, checkpoints, strict=True):
        token = draft_token(ops.keys.prefix, record.id, record.stream_id)
        headers = message_headers(
            identity,
            to=record.to,
            subject=record.subject,
            message_id_value=record.message_id or message_id(token, identity.address),
            draft_key=token,
        )
        items.append(
            DraftItem(
                draft=record,
                # The Date is the send's own.
                email=EmailPreview(
                    headers={name: value for name, value in headers if name != "Date"},
                    body=record.body,
                ),
                company=companies.get((record.run_id, record.id)),
                score=_model(Score, score),
                enrichment=_model(Enrichment, enrichment),
            )
        )
    return items


async def dead_letters_page(
    ops: Ops,
    job_type: str | None = None,
    error_type: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[DeadLetterItem]:
    """Dead letters newest first, optionally of one job type and of one error class."""
    limit = _limit(limit)
    equal = {"function": job_type, "error_type": error_type}
    wanted = {name: value for name, value in equal.items() if value}
    book = _letters(ops)
    letters: list[DeadLetter] = []
    resume: str | None = "+" if cursor is None else _entry_id(cursor)
    seen = 0
    # In steps, each holding Redis for a few milliseconds only, so the workers' own calls go
    # between them.
    while resume is not None and len(letters) < limit and seen < DEAD_LETTER_WINDOW:
        found, resume, looked = await book.scan(
            start=resume,
            limit=limit - len(letters),
            window=min(DEAD_LETTER_STEP, DEAD_LETTER_WINDOW - seen),
            **wanted,
        )
        letters += found
        seen += looked
    total = None if wanted else int(await ops.redis.xlen(ops.keys.dead_letters))
    note = None
    if wanted and resume is not None and len(letters) < limit:
        note = (
            f"looked at {seen:,} entries for this page (the most one page looks at); "
            "older entries may match: go on to the next page"
        )
    return Page(
        items=[_item(letter) for letter in letters], next_cursor=resume, total=total, note=note
    )


async def dead_letter(ops: Ops, entry_id: str) -> DeadLetterItem | None:
    letter = await _letters(ops).show(_entry_id(entry_id))
    return None if letter is None else _item(letter)


async def outbox(ops: Ops) -> list[OutboxItem]:
    """Sends whose outcome is `unknown`, oldest first, with what is known of each."""
    marked = await ops.redis.zrange(ops.keys.unknown_sends, 0, -1, withscores=True)
    if not marked:
        return []
    async with ops.redis.pipeline(transaction=False) as pipe:
        for draft_id, _ in marked:
            pipe.hgetall(ops.keys.draft(draft_id))
        raws = await pipe.execute()
    items = []
    for (draft_id, since), raw in zip(marked, raws, strict=True):
        record = parse_draft(draft_id, raw)
        if record is not None and record.state == "unknown":  # else expired or decided since
            items.append(OutboxItem(draft=record, unknown_since=_when(since)))
    return items


async def suppression_page(
    ops: Ops, cursor: str | None = None, limit: int = 50
) -> Page[SuppressionItem]:
    """Suppressed addresses, with why and when, in Redis's own order (SSCAN: a cursor that
    survives additions, an address added meanwhile may come on a later page or not at all, and
    a page may hold a few more or fewer than `limit`)."""
    limit = _limit(limit)
    position = 0 if cursor is None else _scan_cursor(cursor)
    key = ops.keys.suppressed_addresses
    position, addresses = await reply(ops.redis.sscan(key, position, count=limit))
    addresses = sorted(addresses)
    async with ops.redis.pipeline(transaction=False) as pipe:
        pipe.scard(key)
        if addresses:
            pipe.hmget(ops.keys.suppression_reasons, addresses)
        total, *reasons = await pipe.execute()
    items = []
    for address, raw in zip(addresses, reasons[0] if reasons else [], strict=True):
        reason, since = _reason(raw)
        items.append(SuppressionItem(address=address, reason=reason, since=since))
    return Page(items=items, next_cursor=str(position) if int(position) else None, total=int(total))


def _letters(ops: Ops) -> DeadLetters:
    # Reading needs neither the queue's name nor the job expiry beyond their settings.
    return DeadLetters(
        ops.redis,
        ops.keys,
        queue_name=ops.settings.queue_name,
        job_expires_ms=0,
        max_entries=ops.settings.dead_letter_max_entries,
    )


def _item(letter: DeadLetter) -> DeadLetterItem:
    return DeadLetterItem(**letter.model_dump(), replay_refused=letter.replayable)


def _reason(raw: str | None) -> tuple[str | None, datetime | None]:
    """The suppression's "<reason> <ms>" as written by jobs/outreach/suppression.py."""
    if not raw:
        return None, None
    reason, _, ms = raw.rpartition(" ")
    if not ms.isdigit():
        return raw, None
    return reason, _when(int(ms))


def _when(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _model(model: type[M], raw: str | None) -> M | None:
    """A checkpoint or plan as kept, or None when it is gone or no longer reads."""
    if raw is None:
        return None
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        return None


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise Refused(f"a page holds 1 to {MAX_LIMIT} items, not {limit}")
    return limit


def _entry_id(value: str) -> str:
    if not _ENTRY_ID.match(value):
        raise Refused(f"not an entry id: {value[:40]!r}", "invalid")
    return value


def _scan_cursor(value: str) -> int:
    if not value.isdigit():
        raise Refused(f"not a page cursor: {value[:40]!r}", "invalid")
    return int(value)
