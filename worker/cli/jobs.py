"""`enqueue` and `status`: put a job on the queue (optionally following it), read a job."""

import asyncio
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
import orjson

from jobs.models import Priority
from settings import Settings
from worker.cli.base import CliState, JobName, NamesJobs, cli, pass_state, run_async
from worker.cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    Output,
    json_option,
)
from worker.cli.render import render_report
from worker.cli.watch import ProgressView, WaitTimeout, Watcher
from worker.client import JobReport, PayloadRejected, QueueClient, check_payload
from worker.ops.actor import Actor
from worker.scheduling.queueorder import PRIORITIES

if TYPE_CHECKING:
    from worker.ops.context import Ops


def parse_payload(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--payload") from None
    if not isinstance(payload, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--payload")
    return payload


def checked_payload(settings: Settings, name: str, raw: str | None) -> dict[str, Any] | None:
    """The --payload, parsed and checked with the worker's own model before anything connects."""
    from worker.registry import job_specs  # on use: it loads every job body, `status` needs none

    payload = parse_payload(raw)
    try:
        check_payload(job_specs(settings), name, payload, today=datetime.now(settings.tz).date())
    except PayloadRejected as exc:
        raise click.BadParameter("; ".join(exc.problems), param_hint="--payload") from None
    return payload


@cli.command(
    cls=NamesJobs,
    short_help="Queue a job (and follow it with --wait).",
)
@click.argument("name", metavar="NAME", type=JobName())
@click.option("--payload", metavar="JSON", help="The job's arguments as a JSON object.")
@click.option("--wait", is_flag=True, help="Follow the job with a progress bar until it ends.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="With --wait: stop waiting after this long (exit 1); the job stays queued.",
)
@click.option(
    "--priority",
    type=click.Choice(PRIORITIES),
    help="Its priority class, first to last (default: the job type's own; docs/architecture.md).",
)
@json_option
@pass_state
def enqueue(
    state: CliState,
    name: str,
    payload: str | None,
    wait: bool,
    timeout: float | None,
    priority: Priority | None,
    as_json: bool,
) -> int:
    """Queue job NAME, after checking its payload with the worker's own model.

    Prints the job id (with --json: {"job_id": ...}). With --wait, follows the job (for a
    daily run, until every prospect job it fanned out has ended) and prints its report.
    """
    if timeout is not None and not wait:
        raise click.UsageError("--timeout only applies with --wait")
    # On use: the operations load the registry, which `status` needs none of.
    from worker.cli.acting import act
    from worker.ops import controls

    settings = state.settings()
    body = checked_payload(settings, name, payload)
    out = Output(as_json=as_json)

    async def work(ops: "Ops", actor: Actor) -> int:
        answer = await controls.enqueue(ops, actor, name, body, priority)
        job_id = answer.job_id
        if not wait:
            out.result({"job_id": job_id}, lambda: job_id)
            return EXIT_OK
        # The id first, on its own, so a script (or an operator who gives up) can follow it.
        if not out.as_json:
            click.echo(job_id)
        out.info(f"enqueued {name} as {job_id} on {settings.queue_name}")
        report = await follow(ops.client, out, job_id, timeout_s=timeout)
        out.result(report, lambda: render_report(report))
        return EXIT_OK if report.state == "complete" else EXIT_FAILED

    return act(state, work)


async def follow(
    client: QueueClient, out: Output, job_id: str, *, timeout_s: float | None
) -> JobReport:
    """Wait for the job with progress on stderr; Ctrl-C or the timeout leave it running."""
    watcher = Watcher(client, out.warn, timeout_s=timeout_s)
    try:
        with ProgressView(sys.stderr, live=sys.stderr.isatty()) as view:
            return await watcher.wait(job_id, view.show)
    except asyncio.CancelledError:
        out.info(
            f"stopped waiting; job {job_id} goes on. Follow it: prospect-worker status {job_id}"
        )
        raise
    except WaitTimeout as exc:
        if out.as_json:  # stdout stays JSON alone, and still names the job
            out.result(exc.report, lambda: "")
        raise CliError(
            f"gave up waiting: {exc}; it was not cancelled",
            hint=f"prospect-worker status {job_id}",
            exit_code=EXIT_FAILED,
        ) from None


@cli.command(short_help="State, progress and result of a job.")
@click.argument("job_id")
@json_option
@pass_state
def status(state: CliState, job_id: str, as_json: bool) -> int:
    """State, progress and result of job JOB_ID (a daily run: with its prospects' tally).

    Exit 0 when the job exists and has not failed, 1 when it failed or is unknown.
    """
    settings = state.settings()
    out = Output(as_json=as_json)
    return run_async(show_status(settings, out, job_id), redis_url=settings.redis_url)


async def show_status(settings: Settings, out: Output, job_id: str) -> int:
    client = await QueueClient.connect(settings, conn_retries=0)
    try:
        report = await client.report(job_id)
    finally:
        await client.close()
    if report.state == "not_found" and report.progress is None:
        raise CliError(
            f"no job with id {job_id!r} (unknown, or its result expired)", exit_code=EXIT_FAILED
        )
    out.result(report, lambda: render_report(report))
    return EXIT_FAILED if report.state == "failed" else EXIT_OK
