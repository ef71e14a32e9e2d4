"""Today: the day's run, the queue, the workers, and what waits for a person."""

from starlette.requests import Request
from starlette.responses import Response

from worker.console.routing import page, render
from worker.ops.actor import Actor


async def today_page(request: Request, actor: Actor) -> Response:
    return render(request, "today.html", {})


ROUTES = [page("/", today_page)]
