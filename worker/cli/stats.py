"""`stats`: the queue seen whole, from Redis alone (the figures:
worker/observability/stats_report.py)."""

from settings import Settings
from worker.cli.base import CliState, cli, pass_state, run_async
from worker.cli.output import EXIT_OK, Output, json_option
from worker.observability.stats_report import read_stats, render


@cli.command(
    short_help="Queue depth, in flight, outcomes of the last hour, dead letters, daily run."
)
@json_option
@pass_state
def stats(state: CliState, as_json: bool) -> int:
    """Queue depth by job type and priority (due, scheduled), jobs in flight on every live
    replica, outcomes of the last hour, dead letters, pause state and the daily run."""
    settings = state.settings()
    return run_async(show(settings, Output(as_json=as_json)), redis_url=settings.redis_url)


async def show(settings: Settings, out: Output) -> int:
    figures = await read_stats(settings)
    out.result(figures, lambda: render(figures))
    return EXIT_OK
