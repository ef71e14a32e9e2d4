"""Audit: every action taken through either door, who, what, when, from where; newest first."""

from starlette.requests import Request
from starlette.responses import Response

from worker.console.deps import console_of
from worker.console.routing import optional, page, render
from worker.ops.actor import Actor
from worker.ops.audit import AuditLog

PAGE_SIZE = 100


async def audit(request: Request, actor: Actor) -> Response:
    ops = console_of(request).ops
    before = optional(request.query_params.get("before"))
    entries = await AuditLog(ops.redis, ops.keys).page(PAGE_SIZE, before)
    older = entries[-1].id if len(entries) == PAGE_SIZE else None
    return render(request, "audit.html", {"entries": entries, "older": older})


ROUTES = [page("/audit", audit)]
