"""process_prospect: one prospect from enrichment to the approval queue.

One job per prospect rather than a chain of jobs: the stages share one payload and one slot,
and each finished stage is checkpointed in Redis, so a retry resumes where the last try stopped
(the LLM is not asked twice for the same draft) and the daily run tallies one outcome per
prospect.
"""

import logging
import time

from jobs.deps import Deps, Progress, RefusedRecord
from jobs.keys import parse_prospect_job_id
from jobs.models import Contact, Draft, Enrichment, ProspectJob, ProspectResult, Score, SkipReason
from jobs.outreach.drafting import OutreachBrief
from jobs.prospecting.enrich import enrich
from jobs.prospecting.score import score_company
from jobs.prospecting.store import now_ms

STAGES = ("enrich", "score", "draft", "queue")

log = logging.getLogger("prospect_worker.runs")


async def process_prospect(deps: Deps, job: ProspectJob, progress: Progress) -> ProspectResult:
    started = time.monotonic()
    company, run_id, store = job.company, job.run_id, deps.store
    counts = {"enriched": 0, "scored": 0, "drafted": 0, "queued": 0}

    await progress.update("enrich", done=0, total=len(STAGES))
    enrichment = await store.load_checkpoint(run_id, company.id, "enrichment", Enrichment)
    if enrichment is None:
        enrichment = await enrich(company, fetcher=deps.fetcher, email_finder=deps.email_finder)
        await store.save_checkpoint(run_id, company.id, "enrichment", enrichment)
    counts["enriched"] = 1

    await progress.update("score", done=1, total=len(STAGES))
    score = score_company(company, enrichment, deps.icp)
    await store.save_checkpoint(run_id, company.id, "score", score)
    counts["scored"] = 1

    skip: SkipReason | None = None
    # Decided once: a retry after the queue step reads its outcome back rather than deciding
    # again against a quota its own draft has spent.
    decided = await store.queue_decision(run_id, company.id)
    contact = enrichment.contact
    if decided is not None:
        pass
    elif contact is None:
        skip = "no_contact_email"
    elif score.total < deps.icp.min_score:
        skip = "below_min_score"
    elif await deps.outreach.suppressions.is_suppressed(contact.email):
        # Before drafting, so no LLM call is spent on someone who asked to be left alone; the
        # queue step checks again atomically.
        skip = "suppressed"
    elif await store.quota_used(deps.today()) >= deps.config.daily_limit:
        # Spares the LLM a draft nobody may send today; queue_draft still enforces it exactly.
        skip = "quota_reached"
    else:
        await progress.update("draft", done=2, total=len(STAGES))
        draft = await store.load_checkpoint(run_id, company.id, "draft", Draft)
        if draft is None:
            draft = await deps.writer.write(_brief(deps, job, contact, enrichment, score))
            await store.save_checkpoint(run_id, company.id, "draft", draft)

        await progress.update("queue", done=3, total=len(STAGES))
        decided = await store.queue_draft(
            run_id=run_id,
            company_id=company.id,
            draft=draft,
            score=score.total,
            # The quota counts the local day the draft is queued on, not the run's day: a
            # backfill or a retry past midnight must not open a second day's quota today.
            day=deps.today(),
            limit=deps.config.daily_limit,
            draft_ttl_s=deps.config.draft_ttl_s,
        )
    draft_id = approval_entry = None
    if decided is not None and decided[0] == "refused":
        refused(deps, "approval", run_id, company.id)
        return await _refused_result(progress, company.id, score.total, started)
    if decided is not None:
        queue_outcome, entry = decided
        counts["drafted"] = 1
        if queue_outcome in ("quota_reached", "suppressed"):
            skip = queue_outcome
        elif queue_outcome == "duplicate":
            # Another run queued a draft for this company first: it is not ours to count.
            skip = "already_drafted"
        else:
            counts["queued"] = 1
            # The draft's id is its company's (jobs/outreach/drafts.py), what `drafts show` takes.
            draft_id, approval_entry = company.id, entry

    increments = dict(counts)
    if skip is not None:
        increments[f"skipped:{skip}"] = 1
    recorded = await deps.ledger.record_prospect(
        run_id,
        company.id,
        "skipped" if skip else "queued",
        increments,
        reason=skip or "",
        now_ms=now_ms(),
    )
    if recorded == "refused":
        refused(deps, "tally", run_id, company.id)
        return await _refused_result(progress, company.id, score.total, started)
    await progress.update("done", done=len(STAGES), total=len(STAGES), **counts)
    return ProspectResult(
        company_id=company.id,
        outcome="skipped" if skip else "queued",
        skip_reason=skip,
        score=score.total,
        draft_id=draft_id,
        approval_entry=approval_entry,
        duration_s=round(time.monotonic() - started, 3),
    )


async def prospect_failed(deps: Deps, job: ProspectJob, reason: str) -> None:
    """Called by the runtime once the job has failed for good: the run still gets its tally,
    in the same single step as a finished job's, so a second call changes nothing."""
    recorded = await deps.ledger.record_prospect(
        job.run_id, job.company.id, "failed", {"failed": 1}, reason=reason[:500], now_ms=now_ms()
    )
    if recorded == "refused":
        refused(deps, "tally", job.run_id, job.company.id)


async def prospect_lost(deps: Deps, job_id: str, reason: str) -> None:
    """Called by the runtime when a job's record is gone (it expired unstarted): a prospect job
    is still tallied as failed from its id alone, so its run can complete."""
    parsed = parse_prospect_job_id(job_id)
    if parsed is not None:
        run_id, company_id = parsed
        recorded = await deps.ledger.record_prospect(
            run_id, company_id, "failed", {"failed": 1}, reason=reason[:500], now_ms=now_ms()
        )
        if recorded == "refused":
            refused(deps, "tally", run_id, company_id)


def refused(deps: Deps, record: RefusedRecord, run_id: str, company_id: str) -> None:
    """A write for a job its run did not fan out (the run is gone, or opened again after Redis
    lost it): nothing was written; say so and count it."""
    log.warning(
        "%s of prospect %s refused: run %s did not fan it out (gone, or opened again since)",
        record,
        company_id,
        run_id,
    )
    deps.refused(record)


async def _refused_result(
    progress: Progress, company_id: str, score: int, started: float
) -> ProspectResult:
    await progress.update("refused", done=len(STAGES), total=len(STAGES))
    return ProspectResult(
        company_id=company_id,
        outcome="refused",
        score=score,
        duration_s=round(time.monotonic() - started, 3),
    )


def _brief(
    deps: Deps, job: ProspectJob, contact: Contact, enrichment: Enrichment, score: Score
) -> OutreachBrief:
    sender = deps.config.sender
    return OutreachBrief(
        company=job.company,
        contact=contact,
        score=score,
        website=enrichment.website,
        sender_name=sender.name,
        sender_company=sender.company,
        value_proposition=sender.value_proposition,
    )
