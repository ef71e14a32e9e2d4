"""`python -m worker`: enqueue a job, read a job's status, run the main job end to end, or show
the queue's stats."""

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

import orjson
from arq.worker import get_kwargs
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tqdm import tqdm

from jobs.keys import Keys
from settings import Settings, SettingsError, load_settings
from worker.app import worker_settings
from worker.client import JobReport, QueueClient, UnknownJob
from worker.embedded import DEFAULT_HOST, DEFAULT_PORT, answers, embedded_redis
from worker.engine import EngineWorker
from worker.logs import configure_logging
from worker.registry import DAILY_JOB
from worker.stats import read_stats
from worker.stats import render as render_stats

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    enqueue = commands.add_parser("enqueue", help="enqueue a job by name")
    enqueue.add_argument("name")
    enqueue.add_argument("--payload", help="the job's arguments as a JSON object")
    enqueue.add_argument("--wait", action="store_true", help="show progress until the run ends")
    status = commands.add_parser("status", help="state, progress and result of a job")
    status.add_argument("job_id")
    run = commands.add_parser(
        "run", help="run a job end to end with an in-process worker (embedded Redis if none)"
    )
    run.add_argument("name", nargs="?", default=DAILY_JOB)
    stats = commands.add_parser(
        "stats", help="queue depth, in flight, outcomes of the last hour, dead letters, daily run"
    )
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(logging.WARNING)
    try:
        settings = load_settings()
        payload = orjson.loads(args.payload) if getattr(args, "payload", None) else None
    except SettingsError as exc:
        print(f"prospect-worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except orjson.JSONDecodeError as exc:
        print(f"prospect-worker: --payload is not valid JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if payload is not None and not isinstance(payload, dict):
        print("prospect-worker: --payload must be a JSON object", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "run":
            with reachable_redis(settings) as (ready, kind):
                return asyncio.run(run_main_job(ready, args.name, in_process=kind == "fakeredis"))
        if args.command == "stats":
            figures = asyncio.run(read_stats(settings))
            print(figures.model_dump_json(indent=2) if args.json else render_stats(figures))
            return EXIT_OK
        if args.command == "enqueue":
            return asyncio.run(enqueue(settings, args.name, payload, wait=args.wait))
        return asyncio.run(status(settings, args.job_id))
    except UnknownJob as exc:
        print(f"prospect-worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        print(f"prospect-worker: cannot reach Redis: {exc}", file=sys.stderr)
        return EXIT_FAILED


@contextmanager
def reachable_redis(settings: Settings) -> Iterator[tuple[Settings, str | None]]:
    """The configured Redis; else localhost:6379 if it answers; else an embedded one (and its
    kind)."""
    if "redis_url" in settings.model_fields_set or answers(DEFAULT_HOST, DEFAULT_PORT):
        yield settings, None
        return
    with embedded_redis() as redis:
        print(
            f"REDIS_URL is unset and nothing answers on localhost:{DEFAULT_PORT}: "
            f"started an embedded Redis ({redis.kind}) at {redis.url}",
            file=sys.stderr,
        )
        yield settings.model_copy(update={"redis_url": redis.url}), redis.kind


async def enqueue(
    settings: Settings, name: str, payload: dict[str, Any] | None, *, wait: bool
) -> int:
    client = await QueueClient.connect(settings)
    try:
        job_id = await client.enqueue(name, payload)
        print(job_id)
        if not wait:
            return EXIT_OK
        with ProgressBar() as bar:
            report = await client.wait(job_id, bar.show)
        print_report(report)
        return EXIT_OK if report.state == "complete" else EXIT_FAILED
    finally:
        await client.close()


async def status(settings: Settings, job_id: str) -> int:
    client = await QueueClient.connect(settings)
    try:
        report = await client.report(job_id)
    finally:
        await client.close()
    if report.state == "not_found" and report.progress is None:
        print(
            f"prospect-worker: no job with id {job_id!r} (unknown, or its result expired)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print_report(report)
    return EXIT_OK


async def run_main_job(settings: Settings, name: str, *, in_process: bool = False) -> int:
    """Enqueue, then drain the queue with a burst worker in this process while showing progress.

    `in_process`: the Redis is fakeredis's server, which has no INFO command; arq's start-up
    log line asks for it, so that one call is skipped."""
    client = await QueueClient.connect(settings)
    # A one-off run in this process: no metrics port (it would clash with a running worker's).
    settings = settings.model_copy(update={"metrics_port": 0})
    worker = EngineWorker(**get_kwargs(worker_settings(settings)), burst=True, handle_signals=True)
    try:
        job_id = await client.enqueue(name)
        print(f"enqueued {name} as {job_id}", file=sys.stderr)
        draining = asyncio.create_task(drain(worker, skip_info=in_process))
        with ProgressBar() as bar:
            report = await client.wait(job_id, bar.show)
        await draining
        print_report(report)
        if report.run is not None:
            print_redis_check(await redis_check(client, settings, report.run.run_id))
        return EXIT_OK if report.state == "complete" else EXIT_FAILED
    finally:
        await worker.close()
        await client.close()


async def drain(worker: EngineWorker, *, skip_info: bool) -> None:
    if not skip_info:
        return await worker.main()
    with patch("arq.worker.log_redis_info", new=_no_info):
        return await worker.main()


async def _no_info(*args: Any) -> None:
    return None


async def redis_check(client: QueueClient, settings: Settings, run_id: str) -> dict[str, int]:
    """What Redis itself holds for this run, read back independently of the run's tally."""
    keys = Keys(settings.key_prefix)
    redis = client.redis
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.approvals)
        pipe.get(keys.quota(run_id))
        pipe.scard(keys.contacted)
        pipe.xlen(keys.events)
        pipe.xlen(keys.dead_letters)
        approvals, quota, contacted, events, dead = await pipe.execute()
    return {
        "approval stream entries": approvals,
        "drafts counted against today's quota": int(quota or 0),
        "companies marked contacted": contacted,
        "tracking events": events,
        "dead letters": dead,
    }


class ProgressBar:
    """A live bar on a terminal; one line per change of stage or count otherwise (CI logs)."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._last: tuple[Any, ...] = ()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def show(self, report: JobReport) -> None:
        run = report.run
        stage = report.progress.stage if report.progress else report.state
        done, total = (run.done, run.total) if run and run.total else (0, 0)
        failed = run.failed if run else 0
        if not sys.stderr.isatty():
            if (stage, done, failed) != self._last and (done == total or done % 25 == 0):
                print(
                    f"{report.state} {stage}: {done} of {total} done, {failed} failed",
                    file=sys.stderr,
                )
            self._last = (stage, done, failed)
            return
        if self._bar is None:
            self._bar = tqdm(total=total or None, unit="prospect", file=sys.stderr)
        self._bar.total = total or None
        self._bar.n = done
        self._bar.set_description(stage)
        self._bar.set_postfix(failed=failed)
        self._bar.refresh()


def print_report(report: JobReport) -> None:
    print(orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())
    run = report.run
    if run is not None:
        took = f"{run.duration_s:.2f} s" if run.duration_s is not None else "still running"
        skipped = ", ".join(f"{k} {v}" for k, v in run.skipped.items()) or "none"
        print(
            f"run {run.run_id} ({run.state}): discovered {run.discovered}, fanned out "
            f"{run.total}, enriched {run.enriched}, scored {run.scored}, drafted {run.drafted}, "
            f"queued for approval {run.queued}, failed {run.failed}; skipped: {skipped}; "
            f"took {took}"
        )


def print_redis_check(check: dict[str, int]) -> None:
    print("in Redis:")
    for name, value in check.items():
        print(f"  {name}: {value}")
