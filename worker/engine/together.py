"""Calls sent together: every call made while one is in flight goes out in the next one.

A worker finishing many short jobs at once pays a round trip (and redis-py's packing and
parsing) per job; here the first call goes out at once, and the calls made while it is in
flight wait for it and then go out as one. No timer: a lone call is never held back.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Call = TypeVar("Call")
Answer = TypeVar("Answer")


class Together(Generic[Call, Answer]):
    """`send` takes the calls gathered and answers each, in order (an exception as the answer
    raises for that call only); an exception it raises is raised for every call."""

    def __init__(
        self, send: Callable[[Sequence[Call]], Awaitable[Sequence[Answer | Exception]]]
    ) -> None:
        self._send = send
        self._waiting: list[tuple[Call, asyncio.Future[Answer]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def call(self, call: Call) -> Answer:
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((call, answer))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_waiting(), name="send-together")
        return await answer

    async def _send_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                answers = await self._send([call for call, _ in batch])
                if len(answers) != len(batch):
                    raise ValueError(f"{len(answers)} answers to {len(batch)} calls")
            except asyncio.CancelledError:
                for _, answer in batch + self._waiting:
                    answer.cancel()
                self._waiting = []
                raise
            except Exception as exc:  # noqa: BLE001 - each caller gets it, to handle as its own
                for _, answer in batch:
                    if not answer.done():
                        answer.set_exception(exc)
                continue
            for (_, answer), value in zip(batch, answers, strict=True):
                if answer.done():
                    continue
                if isinstance(value, Exception):
                    answer.set_exception(value)
                else:
                    answer.set_result(value)
