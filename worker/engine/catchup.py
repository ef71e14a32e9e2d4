"""The daily run catches up: a worker that starts after today's tick runs the missed run once.

arq computes a cron job's next run when the worker starts and never looks back, so a day whose
08:00 tick found no worker up had no run. At start-up each worker enqueues today's tick itself,
under the very job id arq's cron gives it (`arqjobs.cron_job_id`): arq's own enqueue
refuses an id whose job or result key exists, so however many replicas start, and whether or
not the tick already ran (its result is kept `PW_KEEP_RESULT_S`, a day by default), the run
happens once. It looks back to today's tick only (the local day in `PW_TIMEZONE`): a day missed
entirely is not run later; `enqueue daily_prospect_queue` with a backfill payload does that.
"""

from datetime import datetime

from arq.connections import ArqRedis

from settings import Settings
from worker.engine.arqjobs import cron_job_id


def todays_tick(settings: Settings, now: datetime) -> datetime:
    local = now.astimezone(settings.tz)
    return datetime.combine(local.date(), settings.daily_run_at, tzinfo=settings.tz)


async def catch_up(
    pool: ArqRedis, settings: Settings, cron_name: str, now: datetime | None = None
) -> str | None:
    """Enqueue today's tick if it has passed; the job id when this call enqueued it."""
    now = now or datetime.now(settings.tz)
    tick = todays_tick(settings, now)
    if now < tick:
        return None  # still ahead today: arq's cron fires it
    job_id = cron_job_id(cron_name, tick)
    job = await pool.enqueue_job(cron_name, _job_id=job_id, _queue_name=settings.queue_name)
    return job_id if job is not None else None
