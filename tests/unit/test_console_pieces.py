"""The console's pure pieces: where `next=` may lead, a proxy user's role, the users entries
and their settings, and the two CLI commands' refusals; no Redis."""

import os
from pathlib import Path
from typing import get_args

import pytest
from click.testing import CliRunner

from settings import USER_LINE, ConsoleRole, ConsoleSettings, SettingsError, load_settings
from worker.cli import EXIT_OK, EXIT_USAGE, cli, main
from worker.console.gate import proxy_role
from worker.console.passwords import verify
from worker.console.signin import safe_next
from worker.console.users import UsersError, load_users, parse_users
from worker.ops.actor import Role

HASH = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/drafts?state=pending", "/drafts?state=pending"),
        ("/jobs?id=a%2Fb", "/jobs?id=a%2Fb"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/x", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("/a\\b", "/"),
        ("/x\r\nLocation: https://evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/signin?next=/signin", "/"),
        ("drafts", "/"),
    ],
)
def test_next_leads_only_to_the_consoles_own_paths(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_a_proxy_user_gets_the_strongest_role_of_their_mapped_groups() -> None:
    roles: dict[str, Role] = {"sales": "approver", "sre": "operator", "all": "viewer"}
    assert proxy_role("all, sales", roles) == "approver"
    assert proxy_role("sre,all,sales", roles) == "operator"
    assert proxy_role("marketing", roles) is None
    assert proxy_role("", roles) is None


def test_users_entries_are_read_and_a_bad_or_repeated_one_is_named() -> None:
    users = parse_users(f"ann:operator:{HASH}\n  bob:viewer:{HASH}  ", "here")
    assert {(u.name, u.role) for u in users.values()} == {("ann", "operator"), ("bob", "viewer")}
    with pytest.raises(UsersError, match=r"here: entry 2 \('bob'\) is not name:role"):
        parse_users(f"ann:operator:{HASH} bob:admin:{HASH}", "here")
    with pytest.raises(UsersError, match="user 'ann' is listed twice"):
        parse_users(f"ann:operator:{HASH} ann:viewer:{HASH}", "here")


def test_users_come_from_the_setting_and_the_file_together(tmp_path: Path) -> None:
    listed = tmp_path / "users"
    listed.write_text(f"# the sales team\nbob:approver:{HASH}\n")
    settings = ConsoleSettings(users=f"ann:operator:{HASH}", users_file=str(listed))
    assert sorted(load_users(settings)) == ["ann", "bob"]
    twice = ConsoleSettings(users=f"bob:operator:{HASH}", users_file=str(listed))
    with pytest.raises(UsersError, match="'bob' is in both"):
        load_users(twice)
    with pytest.raises(UsersError, match="USERS_FILE: cannot read it"):
        load_users(ConsoleSettings(users_file=str(tmp_path / "missing")))


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("PW_CONSOLE__USERS", "ann:operator:secret", "PW_CONSOLE__USERS: entry for 'ann'"),
        ("PW_CONSOLE__SESSION_SECRET", "short", "PW_CONSOLE__SESSION_SECRET: must be at least"),
        ("PW_CONSOLE__GROUP_ROLES", '{"sales": "admin"}', "PW_CONSOLE__GROUP_ROLES__SALES"),
    ],
)
def test_a_bad_console_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, said: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=said) as refused:
        load_settings()
    assert "secret" not in str(refused.value).replace("SESSION_SECRET", "")  # no value shown


def test_hash_password_prints_an_argon2id_users_entry() -> None:
    runner = CliRunner()
    done = runner.invoke(
        cli,
        ["hash-password", "--user", "ann", "--role", "approver", "--stdin"],
        input="correct horse\n",
    )
    assert done.exit_code == EXIT_OK, done.output
    entry = done.stdout.strip()
    assert USER_LINE.match(entry) and entry.startswith("ann:approver:$argon2id$")
    assert verify(entry.split(":", 2)[2], "correct horse")
    asked = runner.invoke(cli, ["hash-password"], input="pw\npw\n")
    assert asked.exit_code == EXIT_OK and asked.stdout.strip().startswith("$argon2id$")


def test_hash_password_refuses_an_empty_password_or_a_bad_name(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", _Lines("\n"))
    assert main(["hash-password", "--stdin"]) == EXIT_USAGE
    assert "Error: the password is empty" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", _Lines("pw\n"))
    assert main(["hash-password", "--stdin", "--user", "a:b"]) == EXIT_USAGE
    assert "no colon or space" in capsys.readouterr().err


class _Lines:
    def __init__(self, text: str) -> None:
        self._lines = text.splitlines(keepends=True)

    def readline(self) -> str:
        return self._lines.pop(0) if self._lines else ""


def test_the_console_refuses_to_start_without_a_secret_or_a_way_in(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("PW_CONSOLE")]:
        monkeypatch.delenv(name)
    assert main(["console"]) == EXIT_USAGE
    assert "Error: PW_CONSOLE__SESSION_SECRET is not set" in capsys.readouterr().err
    monkeypatch.setenv("PW_CONSOLE__SESSION_SECRET", "s" * 32)
    assert main(["console", "--port", "1"]) == EXIT_USAGE
    assert "Error: no way to sign in" in capsys.readouterr().err
    monkeypatch.setenv("PW_CONSOLE__USERS", f"ann:viewer:{HASH} ann:viewer:{HASH}")
    assert main(["console"]) == EXIT_USAGE
    assert "listed twice" in capsys.readouterr().err


def test_the_settings_know_the_same_roles_as_the_operations() -> None:
    # settings.py sits below worker/ and cannot import the operations' Role: kept equal here.
    assert get_args(ConsoleRole) == get_args(Role)
