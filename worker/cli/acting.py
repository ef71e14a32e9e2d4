"""How a command takes an action: through worker/ops, as the person at this terminal.

The command parses, calls one operation and renders its answer; a refusal becomes the CLI's one
error line, with an exit code by its reason (bad input 2, like a usage error; not found,
conflict and forbidden 1)."""

import getpass
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

from worker.cli.base import CliState, run_async
from worker.cli.output import EXIT_FAILED, EXIT_USAGE, CliError
from worker.ops.actor import Actor
from worker.ops.context import Ops, open_ops
from worker.ops.errors import Reason, Refused

EXIT_FOR: dict[Reason, int] = {
    "invalid": EXIT_USAGE,
    "not_found": EXIT_FAILED,
    "conflict": EXIT_FAILED,
    "forbidden": EXIT_FAILED,
}


def cli_actor() -> Actor:
    """The CLI acts as an operator: whoever runs it can reach Redis, and so could do anything."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container user)
        name = f"uid {os.getuid()}"
    return Actor(name=name, role="operator", door="cli", source=socket.gethostname())


def act(
    state: CliState,
    work: Callable[[Ops, Actor], Awaitable[int]],
    hints: Mapping[Reason, str] | None = None,
) -> int:
    """Run `work` with the operations' context; a refusal becomes `Error: ...` and `Try: ...`."""
    settings = state.settings()

    async def run() -> int:
        async with open_ops(settings) as ops:
            try:
                return await work(ops, cli_actor())
            except Refused as exc:
                raise CliError(
                    str(exc), hint=(hints or {}).get(exc.reason), exit_code=EXIT_FOR[exc.reason]
                ) from None

    return run_async(run(), redis_url=settings.redis_url)
