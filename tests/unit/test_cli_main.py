"""`main` in process: exit codes and the one error style, without a Redis."""

import importlib
import importlib.metadata
import os
import pkgutil

import click
import pytest

import worker.cli
from settings import load_settings
from worker.cli import COMMANDS, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, cli, main
from worker.cli.demo import run_target
from worker.cli.output import CliError


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("PW_") or n == "REDIS_URL"]:
        monkeypatch.delenv(name)


def test_version_and_bare_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == EXIT_OK
    version = importlib.metadata.version("prospect-worker")
    assert capsys.readouterr().out == f"prospect-worker, version {version}\n"
    assert main([]) == EXIT_OK
    assert "Commands:" in capsys.readouterr().out


@pytest.mark.usefixtures("clean_env")
def test_a_bad_setting_is_one_error_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PW_DAILY_LIMIT", "lots")
    assert main(["status", "x"]) == EXIT_USAGE
    expected = (
        "Error: invalid settings: PW_DAILY_LIMIT: Input should be a valid integer, "
        "unable to parse string as an integer"
    )
    assert capsys.readouterr().err.splitlines() == [expected]


def test_timeout_without_wait_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enqueue", "daily_prospect_queue", "--timeout", "5"]) == EXIT_USAGE
    assert "Error: --timeout only applies with --wait" in capsys.readouterr().err


def test_ctrl_c_outside_a_command_is_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> int:
        raise click.exceptions.Abort

    monkeypatch.setattr(cli, "main", interrupted)
    assert main(["status", "x"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.usefixtures("clean_env")
def test_asking_for_redis_server_where_none_is_installed_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("worker.local.embedded.shutil.which", lambda name: None)
    with (
        pytest.raises(CliError, match="redis-server is not installed"),
        run_target(load_settings(), "redis-server"),
    ):
        pass


def test_every_command_is_found_in_the_module_commands_names() -> None:
    # The lazy group imports a command's module from COMMANDS: a module that registers a command
    # missing there, or a line naming the wrong module, would hide the command.
    for module in pkgutil.iter_modules(worker.cli.__path__):
        importlib.import_module(f"worker.cli.{module.name}")
    registered = {
        name: command.callback.__module__
        for name, command in cli.commands.items()
        if command.callback is not None
    }
    assert registered == {name: f"worker.cli.{module}" for name, module in COMMANDS.items()}
