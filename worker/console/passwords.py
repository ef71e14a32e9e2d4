"""argon2id password hashes: made by `prospect-worker hash-password`, checked at sign-in."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY


def hasher() -> PasswordHasher:
    """argon2id with RFC 9106's second recommended profile (64 MiB, 3 passes): about 50 ms
    a check here, slow for a guesser and fine for a person signing in."""
    return PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify(password_hash: str, password: str) -> bool:
    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Checked when the user name is unknown, so an unknown name takes as long as a wrong password.
DECOY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$/zjXmnjA5piZspuD1Uhe3A$"
    "jkRyKOuL96njOW4fiRIJIxeBoHhgROPbUxyaxom184c"
)
