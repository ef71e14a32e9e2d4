"""Jobs: one looked up by id (payload, progress, result, tries, error), and those in flight."""

from starlette.requests import Request
from starlette.responses import Response

from worker.console.deps import console_of
from worker.console.routing import page, render
from worker.ops.actor import Actor
from worker.ops.lookup import in_flight, job_detail

IN_FLIGHT_SHOWN = 100
JOB_ID_CHARS = 512


async def jobs(request: Request, actor: Actor) -> Response:
    ops = console_of(request).ops
    job_id = request.query_params.get("id", "").strip()[:JOB_ID_CHARS]
    detail = await job_detail(ops, job_id) if job_id else None
    return render(
        request,
        "jobs.html",
        {"job_id": job_id, "detail": detail, "running": await in_flight(ops, IN_FLIGHT_SHOWN)},
    )


async def jobs_live(request: Request, actor: Actor) -> Response:
    running = await in_flight(console_of(request).ops, IN_FLIGHT_SHOWN)
    return render(request, "partials/in_flight.html", {"running": running})


ROUTES = [page("/jobs", jobs), page("/jobs/live", jobs_live)]
