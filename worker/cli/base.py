"""The click group every command registers on, the state commands share, and the one place
where an interrupt or an unreachable Redis becomes an exit code."""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import click
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from settings import Settings, SettingsError, load_settings
from worker.cli.output import EXIT_USAGE, CliError, Interrupted, mask_url
from worker.observability.logs import configure_logging
from worker.registry import job_specs

PROG = "prospect-worker"
PACKAGE = "prospect-worker"


class CliState:
    """What the group hands its commands: settings, loaded on first use, so `--help` and
    `--version` work even when the environment holds a bad value."""

    def __init__(self, load: Callable[[], Settings] = load_settings) -> None:
        self._load = load
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = self._load()
            except SettingsError as exc:
                raise CliError(str(exc), exit_code=EXIT_USAGE) from None
        return self._settings


pass_state = click.make_pass_decorator(CliState, ensure=True)


def job_names() -> list[str]:
    """The job names for help and completion, known before any setting is read: only the
    names are used, so the defaults (model_construct reads no environment) are enough."""
    return sorted(job_specs(Settings.model_construct()))


def run_async(coro: Coroutine[Any, Any, int], *, redis_url: str) -> int:
    """Run a command's coroutine; Ctrl-C and an unreachable Redis become one line and an exit
    code, never a traceback."""
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        raise Interrupted from None
    except (RedisConnectionError, RedisTimeoutError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CliError(
            f"cannot reach Redis at {mask_url(redis_url)}: {reason}",
            hint="check that Redis runs there and that REDIS_URL is right",
            exit_code=EXIT_USAGE,
        ) from None


@click.group(
    name=PROG,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name=PACKAGE, prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Operate the prospect worker: enqueue jobs, follow them, run the pipeline end to end.

    Exit codes: 0 ok; 1 the job failed, was not found or did not end in time; 2 usage,
    settings or an unreachable Redis; 130 interrupted.
    """
    # Only warnings from the project's own logger: the commands print what matters.
    configure_logging(logging.WARNING)
    ctx.ensure_object(CliState)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
