"""Built-in users: `name:role:argon2id-hash` entries from a setting and a mounted file."""

from pathlib import Path

from pydantic import BaseModel

from settings import USER_LINE, ConsoleSettings
from worker.ops.actor import Role


class ConsoleUser(BaseModel, frozen=True):
    name: str
    role: Role
    password_hash: str


class UsersError(Exception):
    """A users entry that cannot be read; the message names where it came from."""


def parse_users(text: str, origin: str) -> dict[str, ConsoleUser]:
    """Entries separated by white space; in a file, a line starting with `#` is a comment."""
    users: dict[str, ConsoleUser] = {}
    lines = (line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for number, entry in enumerate(" ".join(lines).split(), start=1):
        if not USER_LINE.match(entry):
            name = entry.split(":", 1)[0]
            raise UsersError(f"{origin}: entry {number} ({name!r}) is not name:role:argon2id-hash")
        name, role, password_hash = entry.split(":", 2)
        if name in users:
            raise UsersError(f"{origin}: user {name!r} is listed twice")
        users[name] = ConsoleUser.model_validate(
            {"name": name, "role": role, "password_hash": password_hash}
        )
    return users


def load_users(settings: ConsoleSettings) -> dict[str, ConsoleUser]:
    """Both sources together; a name in both is refused rather than one silently winning."""
    users: dict[str, ConsoleUser] = {}
    if settings.users is not None:
        users = parse_users(settings.users.get_secret_value(), "PW_CONSOLE__USERS")
    if settings.users_file is not None:
        try:
            text = Path(settings.users_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsersError(f"PW_CONSOLE__USERS_FILE: cannot read it: {exc.strerror}") from None
        from_file = parse_users(text, "PW_CONSOLE__USERS_FILE")
        if both := sorted(users.keys() & from_file.keys()):
            raise UsersError(f"user {both[0]!r} is in both PW_CONSOLE__USERS and the users file")
        users |= from_file
    return users
