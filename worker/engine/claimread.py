"""arq's read of a job, answered from the engine's batch claim (worker/engine/worker.py).

arq's `run_job` starts with one transaction on its pool: GET the job record, INCR the job's
delivery count (`arq:retry:<id>`), EXPIRE that count, and with aborts on, ZREM the id from the
abort set. The engine's claim script does the same commands, on the same keys, in the Lua step
that claims the job; `run_job` then finds a pool whose transaction answers from that read
instead of a round trip of its own. The commands arq queues are checked against the ones the
claim did: a changed arq fails loudly here (and in tests/unit/test_arq_canary.py) rather than
counting a delivery twice. The count is taken as the job is claimed, a moment before arq would
take it: a job claimed as a shutdown begins, and cancelled before its `run_job` started, has
spent one of its spare deliveries (as under arq, a job cancelled just after its read has).
"""

from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from worker.engine.arqjobs import ABORT_SET, JOB_KEY_PREFIX, RETRY_KEY_LIFE_S, RETRY_KEY_PREFIX


@dataclass(frozen=True)
class ClaimedRead:
    """What the claim read and counted for one job, as arq's transaction would answer it."""

    job_id: str
    record: bytes | None
    job_try: int
    aborted: int  # ZREM's answer: 1 when the job was marked to abort


# Set by the engine's `run_job` in the job's own task, taken by the first pool use there.
PENDING: ContextVar[ClaimedRead | None] = ContextVar("claimed_read", default=None)


class ArqReadMismatch(RuntimeError):
    """arq's `run_job` queued other commands than the read the claim did for it."""


class AnsweredRead:
    """Stands in for arq's read transaction: takes its commands and answers them from the
    claim's read, with no round trip."""

    def __init__(self, read: ClaimedRead) -> None:
        self._read = read
        self._queued: list[tuple[Any, ...]] = []

    async def __aenter__(self) -> "AnsweredRead":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def get(self, name: str) -> None:
        self._queued.append(("GET", name))

    def incr(self, name: str) -> None:
        self._queued.append(("INCR", name))

    def expire(self, name: str, time: int) -> None:
        self._queued.append(("EXPIRE", name, time))

    def zrem(self, name: str, *values: str) -> None:
        self._queued.append(("ZREM", name, *values))

    async def execute(self) -> list[Any]:
        read, job_id = self._read, self._read.job_id
        expected: list[tuple[Any, ...]] = [
            ("GET", JOB_KEY_PREFIX + job_id),
            ("INCR", RETRY_KEY_PREFIX + job_id),
            ("EXPIRE", RETRY_KEY_PREFIX + job_id, RETRY_KEY_LIFE_S),
        ]
        answers: list[Any] = [read.record, read.job_try, True]
        if len(self._queued) == 4:  # aborts on: the claim removed the abort mark too
            expected.append(("ZREM", ABORT_SET, job_id))
            answers.append(read.aborted)
        if self._queued != expected:
            raise ArqReadMismatch(f"arq's read of a job is now {self._queued!r}")
        return answers


class PoolWithRead:
    """arq's pool, whose next `pipeline()` is the claim's answered read; anything else goes to
    the pool itself."""

    def __init__(self, pool: Any, read: ClaimedRead) -> None:
        self._pool = pool
        self._read = read

    def pipeline(self, transaction: bool = True) -> AnsweredRead:
        return AnsweredRead(self._read)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)
