"""A controllable SMTP server for the sending fault tests: aiosmtpd on loopback that counts every
message it received by Message-ID, answers scripted 4xx/5xx, and can hold a step of the
transaction (RCPT, DATA's reply, QUIT) until the test releases it, so a worker can be killed
exactly there.

A message counts as delivered once the server has its whole content (at DATA), before the
server's reply: the pessimistic count, since a real server may queue what it received even when
the client never read the reply.
"""

import asyncio
import threading
import time
from collections.abc import Sequence
from email.message import Message
from pathlib import Path
from typing import Any, Literal

from worker.local.mailsink import MailSink, SinkHandler

HoldPoint = Literal["rcpt", "data", "quit"]


class FaultySink(SinkHandler):
    def __init__(
        self,
        directory: Path,
        *,
        data_replies: Sequence[str] = (),
        reject: dict[str, str] | None = None,
        hold: HoldPoint | None = None,
    ) -> None:
        super().__init__(directory)
        self.data_replies = list(data_replies)  # replies to the first DATAs, in order
        self.reject = {address.lower(): reply for address, reply in (reject or {}).items()}
        self.hold = hold
        self.held = threading.Event()  # a transaction is waiting at the hold point
        self.release = threading.Event()
        self.deferred = 0  # DATAs answered with a scripted 4xx
        self.arrivals: list[float] = []  # when each message was received (monotonic s)

    def keep(self, raw: bytes, recipients: list[str]) -> Message:
        message = super().keep(raw, recipients)
        self.arrivals.append(time.monotonic())
        return message

    async def _hold(self, point: HoldPoint) -> None:
        if self.hold != point or self.release.is_set():
            return
        self.held.set()
        await asyncio.to_thread(self.release.wait)

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await self._hold("rcpt")
        refused = self.reject.get(address.lower())
        if refused is not None:
            return refused
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_replies:
            self.deferred += 1
            return self.data_replies.pop(0)
        raw = bytes(envelope.original_content or envelope.content)
        self.keep(raw, list(envelope.rcpt_tos))
        await self._hold("data")
        return "250 2.0.0 queued"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await self._hold("quit")
        return "221 bye"


def faulty_sink(directory: Path, **faults: Any) -> MailSink:
    return MailSink(directory, FaultySink(directory, **faults))


def smtp_env(sink: MailSink, **extra: str) -> dict[str, str]:
    """The worker's settings for this sink: plain SMTP on loopback."""
    return {
        "PW_SMTP__HOST": sink.host,
        "PW_SMTP__PORT": str(sink.port),
        "PW_SMTP__SECURITY": "none",
        "PW_SMTP__TIMEOUT_S": "5",
        **extra,
    }
