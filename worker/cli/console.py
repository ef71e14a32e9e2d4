"""`console`: the web console on a local port; `hash-password`: a built-in user's hash."""

import sys

import click

from worker.cli.base import CliState, cli, pass_state
from worker.cli.output import EXIT_OK, EXIT_USAGE, CliError

ROLES = ("viewer", "approver", "operator")


@cli.command(short_help="Serve the web console (sign-in required).")
@click.option("--host", help="Address to bind; default PW_CONSOLE__HOST (127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65_535), help="Port; default PW_CONSOLE__PORT.")
@pass_state
def console(state: CliState, host: str | None, port: int | None) -> int:
    """Serve the console: drafts to approve, jobs, dead letters, controls, charts, on the same
    Redis as the workers. It refuses to start without PW_CONSOLE__SESSION_SECRET and a way
    to sign in (PW_CONSOLE__USERS / PW_CONSOLE__USERS_FILE, or an auth proxy's headers)."""
    settings = state.settings()
    from worker.console.app import ConsoleNotReady
    from worker.console.serve import serve
    from worker.console.users import UsersError

    try:
        serve(
            settings,
            host=host or settings.console.host,
            port=port or settings.console.port,
        )
    except (ConsoleNotReady, UsersError) as exc:
        raise CliError(str(exc), exit_code=EXIT_USAGE) from None
    return EXIT_OK


@cli.command("hash-password", short_help="Make a console user's argon2id password hash.")
@click.option("--user", help="Print a whole PW_CONSOLE__USERS entry for this user name.")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from stdin.")
def hash_password(user: str | None, role: str, from_stdin: bool) -> int:
    """Print an argon2id hash of a password (asked twice, not echoed; or one line of stdin)
    for PW_CONSOLE__USERS or the users file: `name:role:hash`."""
    from worker.console.passwords import hash_password as make_hash

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    if not password:
        raise CliError("the password is empty", exit_code=EXIT_USAGE)
    if user is not None and (not user or any(c in user for c in ": \t\n")):
        raise CliError("a user name has no colon or space", exit_code=EXIT_USAGE)
    digest = make_hash(password)
    click.echo(f"{user}:{role}:{digest}" if user is not None else digest)
    return EXIT_OK
