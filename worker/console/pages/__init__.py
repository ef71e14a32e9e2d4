"""The console's pages, one module each; `ROUTES` is every page's routes together."""

from starlette.routing import BaseRoute

from worker.console.pages import today

ROUTES: list[BaseRoute] = [*today.ROUTES]
