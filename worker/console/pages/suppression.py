"""Suppression: the addresses never emailed or prospected again, with why and when; add one."""

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from worker.console.deps import console_of
from worker.console.routing import action, answer, optional, page, render, text
from worker.ops.actor import Actor
from worker.ops.listings import suppression_page
from worker.ops.suppression import suppress

PAGE_SIZE = 100


async def suppression(request: Request, actor: Actor) -> Response:
    cursor = optional(request.query_params.get("cursor"))
    listing = await suppression_page(console_of(request).ops, cursor, PAGE_SIZE)
    return render(request, "suppression.html", {"listing": listing})


async def add_address(request: Request, actor: Actor, form: FormData) -> Response:
    done = await suppress(
        console_of(request).ops, actor, text(form, "address"), text(form, "reason")
    )
    return answer(request, done.text())


ROUTES = [
    page("/suppression", suppression),
    action("/suppression/add", add_address, permission="suppression"),
]
