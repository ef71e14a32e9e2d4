"""The seam through which a job's ownership reaches the domain: its external calls and the steps
that commit its outcome.

The engine gives every delivery a fencing token (its worker's id and a counter) and keeps it in
Redis as the job's in-progress marker while that worker owns the job. A worker that stalls past
the marker's life (a stopped process, a stalled Redis, a blocked loop) may find the job taken
by another worker. From then on it must call nobody and record nothing for the job:

- before every external call, `check_fence()` (local, no Redis round trip) raises `JobLost` once
  the worker may no longer act for the job;
- a step that commits an outcome checks the token in the same Lua script (`fence_key_and_token`)
  and refuses a stale one, raising `JobLost`.

The fence of the job a task runs is a context variable: the engine sets it for the job's task,
and every call made on the job's behalf (a provider client, a subtask) sees it. Outside a job
(a CLI command, a unit test) there is none and nothing is checked.
"""

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass


class JobLost(Exception):
    """This worker no longer owns the job: stop at once, call nobody, record nothing.

    Not a JobError: code that catches the pipeline's errors to record them must let it through.
    """


@dataclass(frozen=True)
class Fence:
    key: str  # the Redis key that holds the owner's token while the job is owned
    token: str
    # Raises JobLost once this worker may no longer act for the job (checked locally).
    check: Callable[[], None]


CURRENT: ContextVar[Fence | None] = ContextVar("pw_fence", default=None)


def check_fence() -> None:
    """Raise JobLost if the job this task runs for is no longer this worker's."""
    fence = CURRENT.get()
    if fence is not None:
        fence.check()


def fence_key_and_token(placeholder: str) -> tuple[str, str]:
    """The key and token a commit script compares (`GET key == token`), after a local check.

    Outside a job: `placeholder` (any key the script already uses) and an empty token, which the
    scripts read as "no fence"."""
    fence = CURRENT.get()
    if fence is None:
        return placeholder, ""
    fence.check()
    return fence.key, fence.token


# The Lua lines a commit script starts with: `key` and `token` name the script's KEYS/ARGV
# entries for `fence_key_and_token`'s pair; `refused` is what the script returns then.
def lua_guard(key: str, token: str, refused: str) -> str:
    return f"if {token} ~= '' and redis.call('GET', {key}) ~= {token} then return {refused} end\n"
