"""The one way an operation says no: a one-line reason both doors show as is."""

from typing import Literal

# How a door should answer a refusal: the CLI maps these to exit codes, the console to statuses.
Reason = Literal["invalid", "not_found", "conflict", "forbidden"]


class Refused(Exception):
    """The operation did nothing; `str(exc)` is the one line a person is shown."""

    def __init__(self, message: str, reason: Reason = "invalid") -> None:
        super().__init__(message)
        self.reason = reason
