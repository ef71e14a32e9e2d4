"""The console's pages, one module each; `ROUTES` is every page's routes together."""

from starlette.routing import BaseRoute

from worker.console.pages import (
    audit,
    charts,
    controls,
    dead_letters,
    drafts,
    jobs,
    outbox,
    suppression,
    today,
)

ROUTES: list[BaseRoute] = [
    *today.ROUTES,
    *drafts.ROUTES,
    *jobs.ROUTES,
    *dead_letters.ROUTES,
    *outbox.ROUTES,
    *suppression.ROUTES,
    *controls.ROUTES,
    *audit.ROUTES,
    *charts.ROUTES,
]
