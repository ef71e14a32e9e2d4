"""The operator's CLI: `prospect-worker` (or `python -m worker`), a click group.

Adding a command is one new module in this package that registers on the group, and its line
in `COMMANDS` below.

    # worker/cli/dlq.py
    from worker.cli.base import CliState, cli, pass_state, run_async
    from worker.cli.output import EXIT_OK, CliError, Output, json_option

    @cli.group()
    def dlq() -> None:
        "Dead letters: list, show, replay, purge."

    @dlq.command("list")
    @json_option
    @pass_state
    def list_(state: CliState, as_json: bool) -> int:
        settings = state.settings()          # exit 2 with one line on a bad setting
        out = Output(as_json=as_json)
        return run_async(..., redis_url=settings.redis_url)

A command's module is imported when the command is first asked for (`COMMANDS`), so a
command that reads Redis loads neither the demo's worker nor the job bodies.

Conventions (worker/cli/output.py holds them in code):
- stdout is the result only: a human table by default, with `--json` (json_option) JSON alone,
  so the output always parses. Progress, notes and warnings go to stderr (Output.info / warn).
- One error style: raise CliError(message, hint=..., exit_code=...) -> `Error: ...` and `Try: ...`
  on stderr; bad arguments raise click.BadParameter / UsageError, shown the same way
  (`Error: ...`, then `Try: <command> --help`).
- Exit codes: 0 ok; 1 the job failed, was not found or did not end in time (EXIT_FAILED);
  2 usage, settings or an unreachable Redis (EXIT_USAGE); 130 interrupted (EXIT_INTERRUPTED).
  A command returns its code; `main` turns every exception above into its line and code.
- Async work runs through run_async: Ctrl-C becomes exit 130 without a traceback, an
  unreachable Redis one line with the URL (password masked). Connect with conn_retries=0.
- Settings come from CliState.settings(), read on first use (so --help never needs them).
- Job names are JobName(), read from the registry on use: listed in --help, checked, completed
  by the shell (a command listing them in its help: cls=NamesJobs).
"""

import click

from worker.cli.base import PROG, cli
from worker.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CliError

# Each command, and the module of this package that registers it.
COMMANDS = {
    "approve": "outreach",
    "audit": "audit",
    "console": "console",
    "console-demo": "console_demo",
    "dlq": "dlq",
    "drafts": "outreach",
    "enqueue": "jobs",
    "hash-password": "console",
    "outbox": "outreach",
    "outreach-demo": "outreach_demo",
    "pause": "pause",
    "reject": "outreach",
    "resume": "pause",
    "run": "demo",
    "stats": "stats",
    "status": "jobs",
    "suppress": "suppress",
}
cli.modules.update({name: f"{__name__}.{module}" for name, module in COMMANDS.items()})


def main(argv: list[str] | None = None) -> int:
    """The console script `prospect-worker` and `python -m worker`."""
    try:
        code = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
    except click.exceptions.Abort:
        # Ctrl-C outside a command's own handling (at start-up, say).
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.UsageError as exc:
        show_usage_error(exc)
        return exc.exit_code
    except (click.ClickException, CliError) as exc:
        exc.show()
        return exc.exit_code
    return code if isinstance(code, int) else EXIT_OK


def show_usage_error(exc: click.UsageError) -> None:
    """The CLI's one error style for a usage error too: `Error: ...`, then where the usage is,
    in place of click's four lines (usage, a help hint, a blank line, the error)."""
    click.echo(f"Error: {exc.format_message()}", err=True)
    command = exc.ctx.command_path if exc.ctx is not None else PROG
    click.echo(f"Try: {command} --help", err=True)


__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "cli", "main"]
