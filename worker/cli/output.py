"""What every command prints, and how: the conventions of the CLI in code.

- stdout carries the result only: a human table by default, JSON alone with `--json`, so
  `prospect-worker status ID --json | python3 -m json.tool` always parses.
- stderr carries everything else: progress, notes, warnings, errors.
- One error style, click's own: `Error: <what went wrong>`, then `Try: <what to do>` when there is
  something to try. Exit codes are the constants below.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import click
import orjson
from pydantic import BaseModel

EXIT_OK = 0
EXIT_FAILED = 1  # the job failed, was not found, or did not end within --timeout
EXIT_USAGE = 2  # bad arguments, bad settings, or a Redis that cannot be reached
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class CliError(Exception):
    """An error an operator can act on: one line, an optional hint, a documented exit code.
    Shown like click's own usage errors, so the CLI has one error style."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def show(self) -> None:
        click.echo(f"Error: {self.message}", err=True)
        if self.hint:
            click.echo(f"Try: {self.hint}", err=True)


class Interrupted(CliError):
    """Ctrl-C: not an error, so no `Error:` prefix; the command has said what it left behind."""

    def __init__(self) -> None:
        super().__init__("interrupted", exit_code=EXIT_INTERRUPTED)

    def show(self) -> None:
        click.echo("interrupted", err=True)


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print only JSON on stdout (progress and messages still go to stderr).",
)


def to_jsonable(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list | tuple):
        return [to_jsonable(item) for item in data]
    return data


def dumps(data: Any) -> str:
    return orjson.dumps(to_jsonable(data), option=orjson.OPT_INDENT_2).decode()


class Output:
    """Handed to a command: where its result and its messages go."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json

    def result(self, data: Any, human: Callable[[], str]) -> None:
        """The command's answer on stdout: `data` as JSON, or the human rendering."""
        click.echo(dumps(data) if self.as_json else human())

    def info(self, message: str) -> None:
        click.echo(message, err=True)

    def warn(self, message: str) -> None:
        click.echo(f"Warning: {message}", err=True)


def table(rows: Iterable[tuple[str, object]], indent: str = "") -> str:
    """Two aligned columns: a label and its value (a value may span lines)."""
    pairs = [(label, str(value)) for label, value in rows]
    width = max((len(label) for label, _ in pairs), default=0)
    lines = []
    for label, value in pairs:
        head, *rest = value.splitlines() or [""]
        lines.append(f"{indent}{label.ljust(width)}  {head}".rstrip())
        lines.extend(f"{indent}{' ' * width}  {line}" for line in rest)
    return "\n".join(lines)


def columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A header and rows in aligned columns (the last one left ragged)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in [header, *rows]
    )


def mask_url(url: str) -> str:
    """The URL with its password replaced, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:****@{host}").geturl()
