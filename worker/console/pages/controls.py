"""Controls: pause and resume the queue or one job type; queue a daily run by hand, for today
or, as an explicit choice, a backfill of a past day."""

from datetime import date, datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from worker.console.deps import console_of
from worker.console.routing import action, answer, optional, page, render, text
from worker.ops.actor import Actor
from worker.ops.controls import enqueue_daily_run, pause, resume
from worker.ops.errors import Refused
from worker.registry import job_types
from worker.scheduling.pause import ALL


async def controls(request: Request, actor: Actor) -> Response:
    ops = console_of(request).ops
    paused = await ops.client.paused()
    return render(
        request,
        "controls.html",
        {
            "queue_paused": ALL in paused,
            "paused_types": sorted(paused - {ALL}),
            "job_types": sorted(job_types(ops.settings)),
            "today": datetime.now(ops.settings.tz).date().isoformat(),
        },
    )


async def pause_queue(request: Request, actor: Actor, form: FormData) -> Response:
    done = await pause(console_of(request).ops, actor, optional(text(form, "job_type")))
    return answer(request, done.text())


async def resume_queue(request: Request, actor: Actor, form: FormData) -> Response:
    done = await resume(console_of(request).ops, actor, optional(text(form, "job_type")))
    return answer(request, done.text())


async def daily_run(request: Request, actor: Actor, form: FormData) -> Response:
    choice = text(form, "backfill")
    if choice not in ("no", "yes"):
        raise Refused("choose today's run or a backfill of a past day")
    run_date = None
    if choice == "yes":
        try:
            run_date = date.fromisoformat(text(form, "run_date"))
        except ValueError:
            raise Refused("a backfill needs the day it runs for, as YYYY-MM-DD") from None
    done = await enqueue_daily_run(console_of(request).ops, actor, run_date, choice == "yes")
    return answer(request, done.text())


ROUTES = [
    page("/controls", controls),
    action("/controls/pause", pause_queue, permission="operate"),
    action("/controls/resume", resume_queue, permission="operate"),
    action("/controls/daily-run", daily_run, permission="operate"),
]
