"""The click group every command registers on, the state commands share, and the one place
where an interrupt or an unreachable Redis becomes an exit code."""

import asyncio
import importlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import click
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from settings import Settings, SettingsError, load_settings
from worker.cli.output import EXIT_USAGE, CliError, Interrupted, mask_url
from worker.observability.log_setup import configure_logging

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
                if self._settings.jobs:  # per-job settings must name registered job types
                    from worker.registry import job_types

                    job_types(self._settings)
            except SettingsError as exc:
                raise CliError(str(exc), exit_code=EXIT_USAGE) from None
        return self._settings


pass_state = click.make_pass_decorator(CliState, ensure=True)


def job_names() -> list[str]:
    """The job names for help and completion, known before any setting is read: only the
    names are used, so the defaults (model_construct reads no environment) are enough.
    The declarations are light: no job body is loaded."""
    from worker.registry import job_types

    return sorted(job_types(Settings.model_construct()))


class JobName(click.Choice[str]):
    """click.Choice over the job names, read from the registry only when a command parses,
    completes or shows one: `status` or `stats` never loads the job bodies."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(job_names())

    @choices.setter
    def choices(self, _: tuple[str, ...]) -> None:
        """click.Choice sets its choices on construction; here the registry has them."""


class NamesJobs(click.Command):
    """A command whose help ends with the job names, read when the help is shown."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.epilog = "NAME is one of: " + ", ".join(job_names())
        super().format_epilog(ctx, formatter)


class LazyGroup(click.Group):
    """A group that imports a command's module when the command is first asked for, so a
    command loads its own module only (`stats` never loads the demo's worker). `modules` maps
    each command to the module that registers it (worker/cli/__init__.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.modules: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.modules})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.modules:
            importlib.import_module(self.modules[cmd_name])
        return super().get_command(ctx, cmd_name)


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
    cls=LazyGroup,
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
