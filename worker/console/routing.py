"""How a route is declared: a page (GET, a role that may read it) or an action (POST, a role
that may take it, a valid CSRF token). The handler behind either only parses, calls one
operation and renders its answer; a refusal from the operation becomes its status and line."""

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from worker.console.deps import console_of
from worker.console.gate import signed_of
from worker.ops.actor import Actor, Permission
from worker.ops.audit import AuditLog, forbidden
from worker.ops.errors import Reason, Refused


class SendState(BaseModel):
    """A draft's state as an answer shows it, polled until it settles."""

    draft_id: str
    state: str
    reason: str | None = None

    @property
    def settled(self) -> bool:
        return self.state not in ("approved", "sending")


PageHandler = Callable[[Request, Actor], Awaitable[Response]]
ActionHandler = Callable[[Request, Actor, FormData], Awaitable[Response]]
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
STATUS: dict[Reason, int] = {"invalid": 400, "not_found": 404, "conflict": 409, "forbidden": 403}


def allowed(request: Request, permission: Permission) -> Actor:
    actor = signed_of(request).actor
    if not actor.may(permission):
        raise HTTPException(403, str(forbidden(actor, permission)))
    return actor


async def allowed_to_act(request: Request, permission: Permission, action: str) -> Actor:
    """As `allowed`, and a refusal is written to the audit log, as the operation itself
    would write it had the request reached it: the log holds every attempt, from either door."""
    actor = signed_of(request).actor
    if not actor.may(permission):
        refusal = forbidden(actor, permission)
        ops = console_of(request).ops
        outcome = f"refused ({refusal.reason}): {refusal}"
        await AuditLog(ops.redis, ops.keys).record(actor, action, request.url.path, outcome)
        raise HTTPException(403, str(refusal))
    return actor


def page(path: str, handler: PageHandler, *, permission: Permission = "read") -> Route:
    async def endpoint(request: Request) -> Response:
        actor = allowed(request, permission)
        try:
            return await handler(request, actor)
        except Refused as exc:
            return answer(request, str(exc), ok=False, status=STATUS[exc.reason])

    return Route(path, endpoint, methods=["GET"], name=handler.__name__)


def action(path: str, handler: ActionHandler, *, permission: Permission) -> Route:
    async def endpoint(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=2_000)
        token = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, ""))
        if not hmac.compare_digest(token.encode(), signed_of(request).session.csrf.encode()):
            raise HTTPException(403, "the form's token is missing or stale: reload the page")
        actor = await allowed_to_act(request, permission, handler.__name__.replace("_", " "))
        try:
            return await handler(request, actor, form)
        except Refused as exc:
            return answer(request, str(exc), ok=False, status=STATUS[exc.reason])

    return Route(path, endpoint, methods=["POST"], name=handler.__name__)


def render(
    request: Request, template: str, context: Mapping[str, Any] | None = None, *, status: int = 200
) -> Response:
    """A template: a page, or for htmx (`htmx` is set) the fragment it swaps in. Every template
    gets the signed-in actor (to show only the buttons its role may use) and the CSRF token."""
    signed = getattr(request.state, "signed", None)
    values: dict[str, Any] = {
        "actor": signed.actor if signed else None,
        "csrf_token": signed.session.csrf if signed else "",
        "via_proxy": bool(signed and signed.session.how == "proxy"),
        "path": request.url.path,
        "htmx": "hx-request" in request.headers,
        **(context or {}),
    }
    return console_of(request).templates.TemplateResponse(
        request, template, values, status_code=status
    )


def answer(
    request: Request,
    message: str,
    *,
    lines: list[str] | None = None,
    warning: str | None = None,
    follow: "SendState | None" = None,
    ok: bool = True,
    status: int = 200,
) -> Response:
    """What an action did, read back: a line, more lines (one per item of a batch), a warning,
    and `follow`: a draft whose send state the answer keeps showing as it moves. A fragment for
    htmx, a page otherwise."""
    context = {"ok": ok, "message": message, "lines": lines or [], "warning": warning}
    return render(request, "answer.html", {**context, "follow": follow}, status=status)


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def texts(form: FormData, name: str) -> list[str]:
    return [
        value.strip() for value in form.getlist(name) if isinstance(value, str) and value.strip()
    ]


def optional(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None
