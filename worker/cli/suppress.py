"""`suppress`: put an address on the suppression list by hand (worker/ops/suppression.py)."""

import click

from worker.cli.acting import act
from worker.cli.base import CliState, cli, pass_state
from worker.cli.output import EXIT_OK, Output, json_option
from worker.ops.actor import Actor
from worker.ops.context import Ops
from worker.ops.suppression import suppress as suppress_address


@cli.command(short_help="Never email or prospect an address again.")
@click.argument("address")
@click.option("--reason", required=True, help="Why (kept with the address, with the time).")
@json_option
@pass_state
def suppress(state: CliState, address: str, reason: str, as_json: bool) -> int:
    """Add ADDRESS to the suppression list, for good: it is never drafted or emailed again, and
    a draft to it already approved is not sent. An address suppressed already keeps its first
    reason and time."""
    out = Output(as_json=as_json)

    async def work(ops: Ops, actor: Actor) -> int:
        answer = await suppress_address(ops, actor, address, reason)
        out.result(answer, answer.text)
        return EXIT_OK

    return act(state, work)
