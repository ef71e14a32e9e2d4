"""`pause` and `resume`: stop every replica taking jobs (or one job type), then let them go on.

Workers see the switch within a second; running jobs finish (worker/scheduling/pause.py)."""

import click

from settings import Settings
from worker.cli.base import CliState, JobName, cli, pass_state, run_async
from worker.cli.output import EXIT_OK, Output, json_option
from worker.connections import redis_client
from worker.keys import WorkerKeys
from worker.scheduling.pause import PauseSwitch


@cli.command(short_help="Stop workers taking jobs (all, or one type); running ones finish.")
@click.option("--type", "job_type", type=JobName(), help="Pause this type only.")
@json_option
@pass_state
def pause(state: CliState, job_type: str | None, as_json: bool) -> int:
    """Pause the queue: no replica takes a job or enqueues a cron job until `resume`. With
    --type, only jobs of that type wait (deferred, no try spent); the others run."""
    settings = state.settings()
    return run_async(
        switch(settings, Output(as_json=as_json), job_type, pausing=True),
        redis_url=settings.redis_url,
    )


@cli.command(short_help="Let workers take jobs again (all, or one type).")
@click.option("--type", "job_type", type=JobName(), help="Resume this type only.")
@json_option
@pass_state
def resume(state: CliState, job_type: str | None, as_json: bool) -> int:
    """Resume everything (the queue and every paused type), or with --type one type."""
    settings = state.settings()
    return run_async(
        switch(settings, Output(as_json=as_json), job_type, pausing=False),
        redis_url=settings.redis_url,
    )


async def switch(settings: Settings, out: Output, job_type: str | None, *, pausing: bool) -> int:
    redis = redis_client(settings)
    try:
        pauses = PauseSwitch(redis, WorkerKeys(settings.key_prefix))
        await (pauses.pause(job_type) if pausing else pauses.resume(job_type))
        now = sorted(await pauses.read())
    finally:
        await redis.aclose()
    done = f"{'paused' if pausing else 'resumed'} {job_type or 'the queue'}"
    out.result({"paused": now}, lambda: f"{done}; paused now: {', '.join(now) or 'nothing'}")
    return EXIT_OK
