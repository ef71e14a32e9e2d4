"""An SMTP sink on loopback for the demo and the tests: every message it accepts is kept as an
`.eml` file (named by its Message-ID) that any mail client opens.

aiosmtpd is a development dependency (the worker image never runs a sink), imported here only
when a sink starts.
"""

import re
import threading
from collections import Counter
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from worker.local.embedded import DEFAULT_HOST, free_port

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def clear_messages(directory: Path) -> int:
    """Remove the `.eml` files an earlier run left there (only those), so the directory holds
    this run's messages alone; how many were removed."""
    if not directory.is_dir():
        return 0
    earlier = list(directory.glob("*.eml"))
    for path in earlier:
        path.unlink()
    return len(earlier)


class SinkHandler:
    """aiosmtpd's handler: accepts every recipient and keeps every message."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.received: Counter[str] = Counter()  # Message-ID -> times received
        self.recipients: Counter[str] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = bytes(envelope.original_content or envelope.content)
        self.keep(raw, list(envelope.rcpt_tos))
        return "250 2.0.0 queued"

    def keep(self, raw: bytes, recipients: list[str]) -> Message:
        message = message_from_bytes(raw)
        message_id = str(message.get("Message-ID", "")).strip()
        with self._lock:
            self.received[message_id] += 1
            self.recipients.update(recipients)
            count = self.received[message_id]
        name = _UNSAFE.sub("_", message_id.strip("<>")) or "no-message-id"
        suffix = "" if count == 1 else f".{count}"
        (self.directory / f"{name}{suffix}.eml").write_bytes(raw)
        return message

    @property
    def duplicates(self) -> int:
        with self._lock:
            return sum(count - 1 for count in self.received.values())

    @property
    def delivered(self) -> int:
        with self._lock:
            return sum(self.received.values())


class MailSink:
    """`with MailSink(directory) as sink:` a running server on 127.0.0.1:`sink.port`."""

    def __init__(self, directory: Path, handler: SinkHandler | None = None) -> None:
        from aiosmtpd.controller import Controller  # a dev dependency: see the module doc

        self.handler = handler or SinkHandler(directory)
        self.port = free_port()
        self._controller = Controller(self.handler, hostname=DEFAULT_HOST, port=self.port)

    @property
    def host(self) -> str:
        return DEFAULT_HOST

    def start(self) -> Self:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
