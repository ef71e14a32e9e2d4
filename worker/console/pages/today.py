"""Today: the day's run and its funnel, the queue, the jobs in flight, the workers, and what
waits for a person. The figures refresh in place (htmx polls the fragment)."""

from starlette.requests import Request
from starlette.responses import Response

from worker.console.deps import console_of
from worker.console.routing import page, render
from worker.ops.actor import Actor
from worker.ops.lookup import in_flight
from worker.ops.today import today

IN_FLIGHT_SHOWN = 20


async def today_page(request: Request, actor: Actor) -> Response:
    return render(request, "today.html", await _figures(request))


async def today_live(request: Request, actor: Actor) -> Response:
    return render(request, "partials/today_live.html", await _figures(request))


async def _figures(request: Request) -> dict[str, object]:
    ops = console_of(request).ops
    return {"view": await today(ops), "running": await in_flight(ops, IN_FLIGHT_SHOWN)}


ROUTES = [page("/", today_page), page("/today/live", today_live)]
