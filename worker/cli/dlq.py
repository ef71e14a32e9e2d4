"""`dlq list | show | replay | purge`: the dead-letter workflow (worker/runtime/deadletter.py)."""

import re
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import click
import orjson
from redis.asyncio import Redis

from settings import Settings
from worker.cli.acting import act
from worker.cli.base import CliState, JobName, cli, pass_state, run_async
from worker.cli.output import EXIT_FAILED, EXIT_OK, CliError, Output, json_option, table
from worker.connections import JOB_EXPIRES_MS, redis_client
from worker.keys import WorkerKeys
from worker.ops import dead_letters as letter_ops
from worker.ops.actor import Actor
from worker.ops.context import Ops
from worker.ops.dead_letters import ENTRY_ID
from worker.ops.errors import Reason
from worker.runtime.deadletter import DeadLetter, DeadLetters

DURATION = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}


def parse_duration(value: str) -> float:
    """'90s', '15m', '12h', '30d' -> seconds."""
    match = DURATION.match(value.strip())
    if match is None:
        raise click.BadParameter(f"{value!r}: expected a number and a unit, like 30d or 12h")
    return int(match.group(1)) * UNITS[match.group(2)]


def duration_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A click callback, so a bad duration's error names the option it was given to."""
    return None if value is None else parse_duration(value)


def entry_id_argument(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Checked before Redis is asked: Redis answers a malformed id with an error, not nothing."""
    if value is not None and ENTRY_ID.match(value) is None:
        raise click.BadParameter(
            f"{value!r} is not a dead-letter entry id (like 1764000000000-0, from "
            "prospect-worker dlq list)"
        )
    return value


@asynccontextmanager
async def dead_letters(settings: Settings) -> AsyncIterator[DeadLetters]:
    redis: Redis = redis_client(settings)
    try:
        yield DeadLetters(
            redis,
            WorkerKeys(settings.key_prefix),
            queue_name=settings.queue_name,
            job_expires_ms=JOB_EXPIRES_MS,
            max_entries=settings.dead_letter_max_entries,
        )
    finally:
        await redis.aclose()


def command(state: CliState, work: Callable[[DeadLetters], Coroutine[Any, Any, int]]) -> int:
    settings = state.settings()

    async def run() -> int:
        async with dead_letters(settings) as letters:
            return await work(letters)

    return run_async(run(), redis_url=settings.redis_url)


def when(failed_ms: int) -> str:
    return datetime.fromtimestamp(failed_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def render_list(letters: list[DeadLetter]) -> str:
    if not letters:
        return "no dead letters"
    header = ("ENTRY", "FAILED (UTC)", "TYPE", "KIND", "TRIES", "ERROR")
    rows = [
        (
            letter.id,
            when(letter.failed_ms),
            letter.function,
            letter.kind,
            str(letter.tries),
            letter.error[:70],
        )
        for letter in letters
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
        for row in [header, *rows]
    )


def render_letter(letter: DeadLetter) -> str:
    rows: list[tuple[str, object]] = [
        ("entry", letter.id),
        ("job id", letter.job_id),
        ("type", letter.function),
        ("kind", letter.kind),
        ("failed", f"{when(letter.failed_ms)} UTC"),
        ("tries", letter.tries),
        ("error", letter.error),
        ("replay", letter.replayable or "possible"),
    ]
    if letter.payload is not None:
        rows.append(("payload", orjson.dumps(letter.payload).decode()))
    if letter.payload_bytes is not None:
        rows += [
            ("payload", f"{letter.payload_bytes:,} bytes, sha256 {letter.payload_sha256}"),
            ("payload start", letter.payload_head),
        ]
    if letter.raw is not None:
        rows.append(("raw bytes", letter.raw))
    return table(rows)


@cli.group(short_help="Dead letters: list, show, replay, purge.")
def dlq() -> None:
    """Jobs that ended without success, kept for a person: list, show, replay, purge.

    An entry leaves the stream only by replay (in the same step that enqueues its job again) or
    by purge; nothing drops one on its own.
    """


@dlq.command("list")
@click.option("--type", "job_type", type=JobName(), help="Only this job type.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@json_option
@pass_state
def list_(state: CliState, job_type: str | None, limit: int, as_json: bool) -> int:
    """The newest dead letters first."""
    out = Output(as_json=as_json)

    async def work(letters: DeadLetters) -> int:
        found = await letters.list(function=job_type, limit=limit)
        out.result(found, lambda: render_list(found))
        return EXIT_OK

    return command(state, work)


@dlq.command()
@click.argument("entry_id", callback=entry_id_argument)
@json_option
@pass_state
def show(state: CliState, entry_id: str, as_json: bool) -> int:
    """One dead letter whole: payload (or raw bytes), error, tries, whether it can be replayed."""
    out = Output(as_json=as_json)

    async def work(letters: DeadLetters) -> int:
        letter = await letters.show(entry_id)
        if letter is None:
            raise CliError(f"no dead letter {entry_id!r}", hint="prospect-worker dlq list")
        out.result(letter, lambda: render_letter(letter))
        return EXIT_OK

    return command(state, work)


HINTS: dict[Reason, str] = {"not_found": "prospect-worker dlq list"}


@dlq.command()
@click.argument("entry_id", required=False, callback=entry_id_argument)
@click.option("--all", "replay_all", is_flag=True, help="Every entry (of --type, if given).")
@click.option("--type", "job_type", type=JobName(), help="With --all: one type.")
@json_option
@pass_state
def replay(
    state: CliState, entry_id: str | None, replay_all: bool, job_type: str | None, as_json: bool
) -> int:
    """Enqueue ENTRY_ID's job again with fresh tries (or every entry with --all).

    Exit 1 when an entry could not be replayed (its job cannot run again, or is queued).
    """
    if (entry_id is None) == (not replay_all):
        raise click.UsageError("give one ENTRY_ID or --all")
    if job_type and not replay_all:
        raise click.UsageError("--type goes with --all")
    out = Output(as_json=as_json)

    async def work(ops: Ops, actor: Actor) -> int:
        if entry_id is not None:
            chosen = [entry_id]
        else:
            found = await letter_ops.dead_letter_stream(ops).list(function=job_type, limit=100_000)
            chosen = [letter.id for letter in found]
        reports = await letter_ops.replay(ops, actor, chosen)
        out.result(reports, lambda: letter_ops.replays_text(reports))
        return EXIT_OK if all(r.outcome == "replayed" for r in reports) else EXIT_FAILED

    return act(state, work, HINTS)


@dlq.command()
@click.option(
    "--older-than",
    "age",
    metavar="DURATION",
    callback=duration_option,
    help="Only entries older, e.g. 30d.",
)
@click.option("--yes", is_flag=True, help="Purge every entry without asking (no --older-than).")
@json_option
@pass_state
def purge(state: CliState, age: float | None, yes: bool, as_json: bool) -> int:
    """Remove dead letters for good: those older than DURATION, or all of them with --yes."""
    if age is None and not yes:
        raise click.UsageError("purging every dead letter needs --yes (or give --older-than)")
    out = Output(as_json=as_json)

    async def work(ops: Ops, actor: Actor) -> int:
        report = await letter_ops.purge(ops, actor, age)
        out.result(report, report.text)
        return EXIT_OK

    return act(state, work)
