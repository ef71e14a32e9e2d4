"""`audit`: who did what, when, from where, through the CLI or the console (worker/ops/audit.py)."""

from datetime import UTC, datetime

import click

from worker.cli.acting import act
from worker.cli.base import CliState, cli, pass_state
from worker.cli.output import EXIT_OK, Output, columns, json_option
from worker.ops.actor import Actor
from worker.ops.audit import AuditEntry, AuditLog
from worker.ops.context import Ops


def render_entries(entries: list[AuditEntry]) -> str:
    if not entries:
        return "no action recorded"
    rows = [
        (
            datetime.fromtimestamp(e.at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            f"{e.actor} ({e.role})",
            f"{e.door} {e.source}",
            e.action,
            e.target,
            e.outcome,
        )
        for e in entries
    ]
    return columns(("WHEN (UTC)", "WHO", "FROM", "ACTION", "TARGET", "OUTCOME"), rows)


@cli.command(short_help="Every action taken through the CLI or the console, newest first.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--before", metavar="ENTRY", help="Only entries older than this one (a next page).")
@json_option
@pass_state
def audit(state: CliState, limit: int, before: str | None, as_json: bool) -> int:
    """Every action a person took (approve, reject, replay, purge, pause, resume, enqueue,
    resolve, suppress), through either door, refusals included: when, who with which role,
    from where, what, and the outcome. Newest first; --before ENTRY pages back."""
    out = Output(as_json=as_json)

    async def work(ops: Ops, actor: Actor) -> int:
        entries = await AuditLog(ops.redis, ops.keys).page(limit, before)
        out.result(entries, lambda: render_entries(entries))
        return EXIT_OK

    return act(state, work)
