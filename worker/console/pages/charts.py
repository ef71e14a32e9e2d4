"""Charts: jobs and failures per hour by job type, and processing time, for the last 48 hours,
from the counts the workers keep in Redis. The page is a frame; app.js fetches the figures as
JSON and draws them with uPlot (no inline script under the CSP)."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from worker.console.deps import console_of
from worker.console.routing import page, render
from worker.ops.actor import Actor
from worker.ops.charts import series

HOURS = 48


async def charts(request: Request, actor: Actor) -> Response:
    return render(request, "charts.html", {"hours": HOURS})


async def charts_data(request: Request, actor: Actor) -> Response:
    figures = await series(console_of(request).ops, HOURS)
    return JSONResponse(figures.model_dump(mode="json"))


ROUTES = [page("/charts", charts), page("/charts/data", charts_data)]
