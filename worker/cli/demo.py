"""`run`: a job end to end with a worker in this process, on a Redis the user named or on one of
its own, and a summary of what this run did (never what earlier runs left behind)."""

import asyncio
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click

from settings import Settings
from worker.app import burst_worker
from worker.cli.base import CliState, JobName, NamesJobs, cli, pass_state, run_async
from worker.cli.changes import read_counts, render_outcome, this_runs_changes
from worker.cli.jobs import checked_payload
from worker.cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    Output,
    json_option,
    mask_url,
)
from worker.cli.watch import ProgressView
from worker.client import JobReport, QueueClient
from worker.keys import WorkerKeys
from worker.local.embedded import embedded_redis
from worker.registry import DAILY_JOB, job_specs


@dataclass(frozen=True)
class Target:
    """Where a run happens, and the line that tells the user so."""

    settings: Settings
    description: str
    in_process: bool  # fakeredis's server: no INFO command (see drain)
    left_behind: str = "the embedded Redis and everything in it are thrown away"


@contextmanager
def run_target(settings: Settings, embedded: str = "auto") -> Iterator[Target]:
    """A Redis and a queue this run may write into and drain.

    REDIS_URL unset: an embedded Redis, fresh for this run and thrown away after it, so the run
    never touches a server nobody named (a Redis answering on localhost may hold anything).
    REDIS_URL set: that Redis, but a queue of this run's own unless PW_QUEUE_NAME names one, so
    its worker never takes somebody else's jobs."""
    if "redis_url" in settings.model_fields_set:
        url = mask_url(settings.redis_url)
        if "queue_name" in settings.model_fields_set:
            queue, why = settings.queue_name, "from PW_QUEUE_NAME"
        else:
            queue = f"{settings.queue_name}:run:{secrets.token_hex(4)}"
            why = "this run's own, so it takes no other job; PW_QUEUE_NAME names another"
        yield Target(
            settings.model_copy(update={"queue_name": queue}),
            f"Redis: {url} from REDIS_URL, queue {queue} ({why})",
            in_process=False,
            left_behind=f"jobs not yet run stay on {queue} until a worker reads that queue",
        )
        return
    with embedded_redis(prefer_server=embedded != "fakeredis") as redis:
        if embedded == "redis-server" and redis.kind != "redis-server":
            raise CliError(
                "redis-server is not installed", hint="install it, or leave out --embedded"
            )
        yield Target(
            settings.model_copy(update={"redis_url": redis.url}),
            f"Redis: embedded {redis.kind} at {redis.url}, queue {settings.queue_name} (started "
            "for this run and thrown away after it; set REDIS_URL to use your own)",
            in_process=redis.kind == "fakeredis",
        )


@cli.command(
    cls=NamesJobs,
    short_help="Run a job end to end with a worker in this process (the demo).",
)
@click.argument("name", metavar="[NAME]", type=JobName(), default=DAILY_JOB)
@click.option("--payload", metavar="JSON", help="The job's arguments as a JSON object.")
@click.option(
    "--embedded",
    type=click.Choice(["auto", "redis-server", "fakeredis"]),
    default="auto",
    show_default=True,
    help="With REDIS_URL unset: which embedded Redis (auto: redis-server if installed).",
)
@json_option
@pass_state
def run(state: CliState, name: str, payload: str | None, embedded: str, as_json: bool) -> int:
    """Run job NAME (default: the daily run) end to end with a worker in this process.

    With REDIS_URL unset, on an embedded Redis started for this run and thrown away after it
    (redis-server if installed, else fakeredis). With REDIS_URL set, on that Redis, on a queue
    of its own unless PW_QUEUE_NAME names one. The first line says which Redis and queue.
    """
    settings = state.settings()
    body = checked_payload(settings, name, payload)
    out = Output(as_json=as_json)
    with run_target(settings, embedded) as target:
        out.info(target.description)
        return run_async(run_job(target, name, body, out), redis_url=target.settings.redis_url)


async def run_job(target: Target, name: str, payload: dict[str, Any] | None, out: Output) -> int:
    """Enqueue, then drain the queue with a burst worker in this process while showing progress."""
    settings = target.settings
    keys = WorkerKeys(settings.key_prefix)
    client = await QueueClient.connect(settings, specs=job_specs(settings), conn_retries=0)
    # A one-off worker in this process serves no metrics port (a running worker may hold it).
    # Nor does it catch up the cron's daily run: it runs what it was asked to, nothing more.
    worker_config = settings.model_copy(update={"metrics_port": 0, "daily_catch_up": False})
    worker = burst_worker(worker_config, skip_info=target.in_process)
    try:
        before = await read_counts(client.redis, keys)
        job_id = await client.enqueue(name, payload)
        out.info(f"enqueued {name} as {job_id}")
        started = time.perf_counter()
        draining = asyncio.create_task(worker.drain())
        try:
            with ProgressView(sys.stderr, live=sys.stderr.isatty()) as view:
                report = await client.wait(job_id, view.show)
            await draining
        except asyncio.CancelledError:
            out.info(f"stopped: {target.left_behind}")
            raise
        finally:
            # The worker must stop before it is closed under it (Ctrl-C, an error while waiting).
            draining.cancel()
            await asyncio.gather(draining, return_exceptions=True)
        elapsed_s = round(time.perf_counter() - started, 3)
        changes = this_runs_changes(before, await read_counts(client.redis, keys))
        run_id = _result(report).get("run_id")
        quota_before = before.quotas.get(keys.quota(run_id), 0) if run_id else 0
        out.result(
            {
                "redis": target.description,
                "job": report.model_dump(mode="json"),
                "changes": changes,
                "elapsed_s": elapsed_s,
            },
            lambda: render_outcome(
                report,
                changes,
                quota_before=quota_before,
                daily_limit=settings.daily_limit,
                elapsed_s=elapsed_s,
            ),
        )
        return EXIT_OK if report.state == "complete" else EXIT_FAILED
    finally:
        await worker.close()
        await client.close()


def _result(report: JobReport) -> dict[str, Any]:
    return report.result if isinstance(report.result, dict) else {}
