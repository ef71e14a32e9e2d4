"""`pause` and `resume`: stop every replica taking jobs (or one job type), then let them go on.

Workers see the switch within a second; running jobs finish (worker/scheduling/pause.py)."""

import click

from worker.cli.acting import act
from worker.cli.base import CliState, JobName, cli, pass_state
from worker.cli.output import EXIT_OK, Output, json_option
from worker.ops import controls
from worker.ops.actor import Actor
from worker.ops.context import Ops


@cli.command(short_help="Stop workers taking jobs (all, or one type); running ones finish.")
@click.option("--type", "job_type", type=JobName(), help="Pause this type only.")
@json_option
@pass_state
def pause(state: CliState, job_type: str | None, as_json: bool) -> int:
    """Pause the queue: no replica takes a job or enqueues a cron job until `resume`. With
    --type, only jobs of that type wait (deferred, no try spent); the others run."""
    return switch(state, Output(as_json=as_json), job_type, pausing=True)


@cli.command(short_help="Let workers take jobs again (all, or one type).")
@click.option("--type", "job_type", type=JobName(), help="Resume this type only.")
@json_option
@pass_state
def resume(state: CliState, job_type: str | None, as_json: bool) -> int:
    """Resume everything (the queue and every paused type), or with --type one type."""
    return switch(state, Output(as_json=as_json), job_type, pausing=False)


def switch(state: CliState, out: Output, job_type: str | None, *, pausing: bool) -> int:
    async def work(ops: Ops, actor: Actor) -> int:
        action = controls.pause if pausing else controls.resume
        answer = await action(ops, actor, job_type)
        out.result({"paused": answer.paused}, answer.text)
        return EXIT_OK

    return act(state, work)
