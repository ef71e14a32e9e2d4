"""The email a draft becomes: headers that make it answerable, unsubscribable and traceable.

The Message-ID is derived from the draft alone (key prefix, company id, approval entry), so every
try of a send carries the same one: a server or a test counting by Message-ID sees a second
delivery of the same draft as a duplicate, and a reply's In-Reply-To leads back to the draft.
"""

import email.policy
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from urllib.parse import quote

from jobs.outreach.suppression import domain_of

_MESSAGE_IDS = re.compile(r"<[^<>\s]+>")
# CRLF line ends, and lines up to RFC 5322's limit: the default 78 folds List-Unsubscribe into
# RFC 2047 encoded words, which mail clients do not read as URIs.
POLICY = email.policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class SenderIdentity:
    name: str
    address: str
    reply_to: str | None = None
    unsubscribe_mailto: str | None = None  # default: the sender's address
    unsubscribe_url: str | None = None  # https, with "{token}"


def draft_token(prefix: str, draft_id: str, stream_id: str) -> str:
    """Opaque, stable per draft: the Message-ID's left part and the unsubscribe token."""
    return hashlib.sha256(f"{prefix}:{draft_id}:{stream_id}".encode()).hexdigest()[:32]


def message_id(token: str, sender_address: str) -> str:
    return f"<{token}@{domain_of(sender_address)}>"


def referenced_ids(*headers: str | None) -> list[str]:
    """Message-IDs named in In-Reply-To / References, in order, without repeats."""
    found: list[str] = []
    for header in headers:
        for match in _MESSAGE_IDS.findall(header or ""):
            if match not in found:
                found.append(match)
    return found


def list_unsubscribe(identity: SenderIdentity, token: str) -> tuple[str, str | None]:
    """The List-Unsubscribe value and, with an HTTPS target, List-Unsubscribe-Post (RFC 8058:
    one-click needs an https URI; the mailto is for clients that only speak mail)."""
    mailbox = identity.unsubscribe_mailto or identity.address
    targets = [f"<mailto:{mailbox}?subject={quote('unsubscribe ' + token)}>"]
    post = None
    if identity.unsubscribe_url:
        targets.insert(0, f"<{identity.unsubscribe_url.replace('{token}', token)}>")
        post = "List-Unsubscribe=One-Click"
    return ", ".join(targets), post


def message_headers(
    identity: SenderIdentity,
    *,
    to: str,
    subject: str,
    message_id_value: str,
    draft_key: str,
    now: datetime | None = None,
) -> list[tuple[str, str]]:
    """The headers a draft's email carries, in order; also what a reviewer is shown before
    approving (cheap: building the whole message parses every header again)."""
    headers = [
        ("From", formataddr((identity.name, identity.address))),
        ("To", to),
        ("Subject", subject),
        ("Date", format_datetime(now or datetime.now(UTC))),
        ("Message-ID", message_id_value),
    ]
    if identity.reply_to:
        headers.append(("Reply-To", identity.reply_to))
    unsubscribe, post = list_unsubscribe(identity, draft_key)
    headers.append(("List-Unsubscribe", unsubscribe))
    if post is not None:
        headers.append(("List-Unsubscribe-Post", post))
    return headers


def build_message(
    identity: SenderIdentity,
    *,
    to: str,
    subject: str,
    body: str,
    message_id_value: str,
    draft_key: str,
    now: datetime | None = None,
) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    for name, value in message_headers(
        identity,
        to=to,
        subject=subject,
        message_id_value=message_id_value,
        draft_key=draft_key,
        now=now,
    ):
        message[name] = value
    message.set_content(body)
    return message
