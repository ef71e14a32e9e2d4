"""Dead letters: paged, filtered by job type and error class; one shown whole; replay one or
a selection; purge, after a confirmation the server checks (not only the browser)."""

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from worker.console.deps import console_of
from worker.console.routing import action, answer, optional, page, render, text, texts
from worker.ops.actor import Actor
from worker.ops.dead_letters import purge, replay
from worker.ops.errors import Refused
from worker.ops.listings import dead_letter, dead_letters_page

PAGE_SIZE = 50
HOUR_S = 3_600


async def dead_letters(request: Request, actor: Actor) -> Response:
    params = request.query_params
    job_type, error_type = optional(params.get("type")), optional(params.get("error"))
    listing = await dead_letters_page(
        console_of(request).ops, job_type, error_type, optional(params.get("cursor")), PAGE_SIZE
    )
    return render(
        request,
        "dead_letters.html",
        {"listing": listing, "job_type": job_type or "", "error_type": error_type or ""},
    )


async def show_dead_letter(request: Request, actor: Actor) -> Response:
    entry_id = request.query_params.get("id", "")
    letter = await dead_letter(console_of(request).ops, entry_id)
    if letter is None:
        raise Refused(f"no dead letter {entry_id[:40]!r} (replayed or purged since?)", "not_found")
    return render(request, "dead_letter.html", {"letter": letter})


async def replay_entries(request: Request, actor: Actor, form: FormData) -> Response:
    entries = texts(form, "entry_id")
    if not entries:
        raise Refused("tick at least one dead letter to replay")
    reports = await replay(console_of(request).ops, actor, entries)
    done = sum(report.outcome == "replayed" for report in reports)
    return answer(
        request,
        f"replayed {done} of {len(reports)}",
        lines=[report.text() for report in reports],
        ok=done == len(reports),
    )


async def purge_entries(request: Request, actor: Actor, form: FormData) -> Response:
    if text(form, "confirm") != "purge":
        raise Refused("tick the confirmation: purged dead letters are gone for good")
    scope = text(form, "scope")
    if scope == "all":
        older_than_s = None
    else:
        try:
            older_than_s = float(text(form, "older_than_h")) * HOUR_S
        except ValueError:
            raise Refused("give the age in hours (a number), or choose every entry") from None
    done = await purge(console_of(request).ops, actor, older_than_s)
    return answer(request, done.text())


ROUTES = [
    page("/dead-letters", dead_letters),
    page("/dead-letters/show", show_dead_letter),
    action("/dead-letters/replay", replay_entries, permission="operate"),
    action("/dead-letters/purge", purge_entries, permission="operate"),
]
