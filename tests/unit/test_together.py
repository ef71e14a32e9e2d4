"""Calls sent together (worker/engine/together.py): how the engine finishes jobs that end at once,
and the claim's answered read of a job (worker/engine/claimread.py)."""

import asyncio
from collections.abc import Sequence

import pytest

from worker.engine.arqjobs import ABORT_SET, JOB_KEY_PREFIX, RETRY_KEY_LIFE_S, RETRY_KEY_PREFIX
from worker.engine.claimread import AnsweredRead, ArqReadMismatch, ClaimedRead
from worker.engine.together import Together


class Sender:
    """Answers each call with its double; holds every send until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail_with: Exception | None = None

    async def send(self, calls: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(calls))
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return [ValueError(f"bad {call}") if call < 0 else call * 2 for call in calls]


async def test_a_lone_call_goes_at_once_and_calls_made_meanwhile_go_as_one() -> None:
    sender = Sender()
    together = Together(sender.send)
    first = asyncio.create_task(together.call(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert sender.batches == [[1]]
    rest = [asyncio.create_task(together.call(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    sender.release.set()
    assert await first == 2
    assert await asyncio.gather(*rest) == [4, 6, 8]
    assert sender.batches == [[1], [2, 3, 4]]


async def test_an_answer_that_is_an_error_raises_for_its_call_only() -> None:
    sender = Sender()
    sender.release.set()
    together = Together(sender.send)
    good, bad = await asyncio.gather(together.call(5), together.call(-1), return_exceptions=True)
    assert good == 10
    assert isinstance(bad, ValueError) and str(bad) == "bad -1"


async def test_a_failed_send_raises_for_every_call_in_it_and_the_next_calls_go_on() -> None:
    sender = Sender()
    sender.fail_with = ConnectionError("gone")
    sender.release.set()
    together = Together(sender.send)
    answers = await asyncio.gather(together.call(1), together.call(2), return_exceptions=True)
    assert all(isinstance(answer, ConnectionError) for answer in answers)
    sender.fail_with = None
    assert await together.call(3) == 6


def read_of(job_id: str) -> ClaimedRead:
    return ClaimedRead(job_id, b"{}", 2, 1)


async def test_arqs_read_is_answered_from_the_claim_without_aborts() -> None:
    async with AnsweredRead(read_of("j1")) as pipe:
        pipe.get(JOB_KEY_PREFIX + "j1")
        pipe.incr(RETRY_KEY_PREFIX + "j1")
        pipe.expire(RETRY_KEY_PREFIX + "j1", RETRY_KEY_LIFE_S)
        assert await pipe.execute() == [b"{}", 2, True]


async def test_arqs_read_is_answered_from_the_claim_with_aborts() -> None:
    async with AnsweredRead(read_of("j1")) as pipe:
        pipe.get(JOB_KEY_PREFIX + "j1")
        pipe.incr(RETRY_KEY_PREFIX + "j1")
        pipe.expire(RETRY_KEY_PREFIX + "j1", RETRY_KEY_LIFE_S)
        pipe.zrem(ABORT_SET, "j1")
        assert await pipe.execute() == [b"{}", 2, True, 1]


async def test_another_read_than_the_claims_is_refused() -> None:
    pipe = AnsweredRead(read_of("j1"))
    pipe.get(JOB_KEY_PREFIX + "j2")
    pipe.incr(RETRY_KEY_PREFIX + "j2")
    pipe.expire(RETRY_KEY_PREFIX + "j2", RETRY_KEY_LIFE_S)
    with pytest.raises(ArqReadMismatch):
        await pipe.execute()
