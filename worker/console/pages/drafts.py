"""Drafts: the approval queue, oldest first, each with the email as it will be sent, the score,
the website's evidence and the contact; approve, edit and approve, reject, approve several. An
approved draft's send state is shown as it moves."""

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from jobs.outreach.drafts import STATES, DraftState
from worker.console.deps import console_of
from worker.console.routing import SendState, action, answer, optional, page, render, text, texts
from worker.ops.actor import Actor
from worker.ops.drafts import ApproveAnswer, approve, approve_many, edit_and_approve, reject
from worker.ops.errors import Refused
from worker.ops.listings import drafts_page
from worker.ops.sends import draft_book

PAGE_SIZE = 20


def _state(value: str | None) -> DraftState | None:
    if value in (None, "", "all"):
        return None
    for state in STATES:
        if state == value:
            return state
    raise Refused(f"no draft state {value!r} (states: {', '.join(STATES)})")


async def drafts(request: Request, actor: Actor) -> Response:
    params = request.query_params
    state = _state(params.get("state", "pending"))
    listing = await drafts_page(
        console_of(request).ops, state, optional(params.get("cursor")), PAGE_SIZE
    )
    return render(
        request,
        "drafts.html",
        {"listing": listing, "state": state or "all", "states": list(STATES)},
    )


async def draft_state(request: Request, actor: Actor) -> Response:
    draft_id = request.query_params.get("id", "")
    record = await draft_book(console_of(request).ops).show(draft_id) if draft_id else None
    if record is None:
        raise Refused(f"no draft {draft_id!r}", "not_found")
    follow = SendState(draft_id=record.id, state=record.state, reason=record.reason)
    return render(request, "partials/send_state.html", {"follow": follow})


def _approved(request: Request, done: ApproveAnswer) -> Response:
    return answer(request, done.text(), follow=SendState(draft_id=done.draft_id, state=done.state))


async def approve_one(request: Request, actor: Actor, form: FormData) -> Response:
    return _approved(request, await approve(console_of(request).ops, actor, text(form, "draft_id")))


async def edit_one(request: Request, actor: Actor, form: FormData) -> Response:
    body = form.get("body")
    done = await edit_and_approve(
        console_of(request).ops,
        actor,
        text(form, "draft_id"),
        optional(text(form, "subject")),
        # The body as typed (its own line breaks), less the CR a browser sends with each.
        body.replace("\r\n", "\n") if isinstance(body, str) and body.strip() else None,
    )
    return _approved(request, done)


async def reject_one(request: Request, actor: Actor, form: FormData) -> Response:
    done = await reject(
        console_of(request).ops, actor, text(form, "draft_id"), text(form, "reason")
    )
    return answer(request, done.text())


async def approve_several(request: Request, actor: Actor, form: FormData) -> Response:
    answers = await approve_many(console_of(request).ops, actor, texts(form, "draft_id"))
    approved = sum(isinstance(one, ApproveAnswer) for one in answers)
    return answer(
        request,
        f"approved {approved} of {len(answers)}",
        lines=[one.text() for one in answers],
        ok=approved == len(answers),
    )


ROUTES = [
    page("/drafts", drafts),
    page("/drafts/state", draft_state),
    action("/drafts/approve", approve_one, permission="drafts"),
    action("/drafts/edit", edit_one, permission="drafts"),
    action("/drafts/reject", reject_one, permission="drafts"),
    action("/drafts/approve-several", approve_several, permission="drafts"),
]
