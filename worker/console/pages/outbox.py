"""Outbox: sends whose outcome is `unknown` (the worker stopped mid-send), with what is known
of each, resolved as sent or retried; a retry may send twice, and the page says so."""

from typing import Literal

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from worker.console.deps import console_of
from worker.console.routing import SendState, action, answer, page, render, text
from worker.ops.actor import Actor
from worker.ops.errors import Refused
from worker.ops.listings import outbox
from worker.ops.outbox import RETRY_WARNING, resolve


async def outbox_page(request: Request, actor: Actor) -> Response:
    items = await outbox(console_of(request).ops)
    return render(request, "outbox.html", {"items": items, "retry_warning": RETRY_WARNING})


async def resolve_send(request: Request, actor: Actor, form: FormData) -> Response:
    outcome: Literal["sent", "retry"]
    match text(form, "outcome"):
        case "sent":
            outcome = "sent"
        case "retry" if text(form, "understood") == "yes":
            outcome = "retry"
        case "retry":
            raise Refused("tick that you understand a retry may send the email twice")
        case _:
            raise Refused("resolve a send as sent or retry")
    done = await resolve(console_of(request).ops, actor, text(form, "draft_id"), outcome)
    follow = SendState(draft_id=done.draft_id, state=done.state) if done.send else None
    return answer(request, done.text(), warning=done.warning, follow=follow)


ROUTES = [
    page("/outbox", outbox_page),
    action("/outbox/resolve", resolve_send, permission="operate"),
]
