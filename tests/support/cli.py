"""The CLI called in this process: what `run_cli` gives (exit code, stdout, stderr), without the
second or so a new interpreter takes to import the CLI.

For tests of what a command does with Redis. A test about the process itself (a signal, the
console script, an import that must stay lazy) uses `run_cli` from tests.support.processes.

    done = cli_in_process(env_for(redis_url), "dlq", "list", "--json")
    assert done.returncode == 0, done.stderr

The command runs in a thread of its own, so its `asyncio.run` works when the caller is a
coroutine; the caller waits for it, as it waits for a process. While it runs, `os.environ` is
the given environment and the standard streams are captured (click's isolation); the loggers
the CLI configures are put back afterwards.
"""

import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from click.testing import CliRunner

from worker.cli import main
from worker.engine.arqjobs import LOGGERS
from worker.observability.log_setup import LIBRARY_LOGGERS, PROJECT_LOGGER


@dataclass
class _LoggerState:
    handlers: list[logging.Handler]
    filters: list[Any]  # logging.Filter or a callable
    level: int
    propagate: bool


@contextmanager
def _loggers_kept() -> Iterator[None]:
    """The CLI points the project's loggers at its stderr; this process's tests keep theirs."""
    names = (PROJECT_LOGGER, *LOGGERS, *LIBRARY_LOGGERS, "httpx")
    loggers = [logging.getLogger(name) for name in names]
    kept = [
        _LoggerState(list(lg.handlers), list(lg.filters), lg.level, lg.propagate) for lg in loggers
    ]
    try:
        yield
    finally:
        for logger, state in zip(loggers, kept, strict=True):
            logger.handlers[:] = state.handlers
            logger.filters[:] = state.filters
            logger.setLevel(state.level)
            logger.propagate = state.propagate


def _environment_changes(env: dict[str, str]) -> dict[str, str | None]:
    """What turns this process's environment into `env`: a value for each key that differs,
    None for each key `env` leaves out (a PW_ setting of the test session, say)."""
    changes: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    changes.update({k: v for k, v in env.items() if os.environ.get(k) != v})
    return changes


def cli_in_process(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    runner = CliRunner()
    finished: list[subprocess.CompletedProcess[str]] = []
    raised: list[BaseException] = []

    def call() -> None:
        try:
            with runner.isolation(env=_environment_changes(env)) as (out, err, _):
                code = main(list(args))
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode(errors="replace")
            finished.append(
                subprocess.CompletedProcess(["prospect-worker", *args], code, stdout, stderr)
            )
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            raised.append(exc)

    with _loggers_kept():
        thread = threading.Thread(target=call, name="cli-in-process")
        thread.start()
        thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"`prospect-worker {' '.join(args)}` ran over {timeout} s")
    if raised:
        raise raised[0]
    return finished[0]
