"""One SMTP transaction with aiosmtplib, its failures sorted by what they say about delivery.

What matters for "at most once" is not only transient versus permanent, but whether the server
may have accepted the message. Until DATA's final reply is read, an error proves it was not
accepted (a reply code, or a connection that failed before the message went out). A connection
lost or timed out after the message was handed over, while waiting for DATA's reply, proves
nothing: the server may have queued it. That one case is `DeliveryUnknown`.
"""

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
from pydantic import SecretStr

from jobs.errors import PermanentError, TransientError

# Codes that say the mailbox does not exist or never will take mail: a hard bounce.
HARD_BOUNCE_CODES = frozenset({550, 551, 553})


class SmtpDeferred(TransientError):
    """4xx, or a connection error before the message was handed over: not delivered."""


class SmtpRejected(PermanentError):
    """5xx: not delivered, and asking again will not help."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code

    @property
    def hard_bounce(self) -> bool:
        return self.code in HARD_BOUNCE_CODES


class DeliveryUnknown(PermanentError):
    """The message was handed over and then the connection failed before the server's
    verdict: it may or may not have been delivered. Never retried on its own."""


class SendingOff(PermanentError):
    """No SMTP server is configured."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # "tls", "starttls" or "none"
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = 30.0
    validate_certs: bool = True


class Mailer:
    """Sends one message per call on a fresh connection (a daily batch of tens; a pooled
    connection would save little and add a state that can break between sends)."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    def __repr__(self) -> str:
        return f"Mailer({self._config.host}:{self._config.port}, {self._config.security})"

    async def send(self, message: EmailMessage, *, sender: str, recipient: str) -> str:
        """The server's reply to DATA. Raises SmtpDeferred, SmtpRejected or DeliveryUnknown."""
        config = self._config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            username=config.username,
            password=config.password.get_secret_value() if config.password else None,
            timeout=config.timeout_s,
            validate_certs=config.validate_certs,
        )
        handed_over = False
        try:
            await client.connect()
            await client.mail(sender)
            await client.rcpt(recipient)
            handed_over = True
            reply = await client.data(message.as_bytes())
        except aiosmtplib.SMTPResponseException as exc:
            # A reply code: the server's verdict, whatever the step.
            raise _by_code(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            if handed_over:
                raise DeliveryUnknown(
                    f"smtp: connection lost waiting for DATA's reply ({exc!r}); "
                    "the server may have accepted the message"
                ) from None
            raise SmtpDeferred(f"smtp: {type(exc).__name__}: {exc}") from None
        finally:
            await _close(client)
        return f"{reply.code} {reply.message}"


def _by_code(code: int, message: str) -> TransientError | PermanentError:
    text = f"smtp {code}: {message}"
    if 400 <= code < 500:
        return SmtpDeferred(text)
    return SmtpRejected(text, code=code)


async def _close(client: aiosmtplib.SMTP) -> None:
    """QUIT when still connected, then drop the transport whatever happened (a server that
    answered 421 may have closed its side, leaving ours open). The message's fate is decided
    by then, so a failing QUIT changes nothing."""
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass  # the send's outcome is already known; only the goodbye failed
    finally:
        client.close()
