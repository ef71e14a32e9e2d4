"""The console's ASGI app: `create_app(settings)` builds it with everything passed in; its
lifespan opens the operations' Redis connections and closes them at shutdown."""

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from settings import Settings
from worker.console import pages, signin
from worker.console.deps import Console
from worker.console.gate import SignInGate
from worker.console.headers import SecurityHeaders
from worker.console.routing import answer
from worker.console.sessions import Clock, SessionStore
from worker.console.throttle import SigninThrottle
from worker.console.users import ConsoleUser, load_users
from worker.ops.context import Ops, open_ops

HERE = Path(__file__).resolve().parent
MAX_BODY_BYTES = 1_048_576
OpenOps = Callable[[Settings], AbstractAsyncContextManager[Ops]]


class ConsoleNotReady(Exception):
    """The console cannot start as configured; the message says which setting to set."""


def check_startable(settings: Settings, users: dict[str, ConsoleUser]) -> str:
    """The session secret, or why the console refuses to start: like Flower on a public port,
    it will not run with no way to sign in."""
    console = settings.console
    if console.session_secret is None:
        raise ConsoleNotReady(
            "PW_CONSOLE__SESSION_SECRET is not set (32 characters or more, e.g. from "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    if not users and not console.trust_proxy_headers:
        raise ConsoleNotReady(
            "no way to sign in: set PW_CONSOLE__USERS or PW_CONSOLE__USERS_FILE (see "
            "`prospect-worker hash-password`), or PW_CONSOLE__TRUST_PROXY_HEADERS behind an "
            "auth proxy"
        )
    return console.session_secret.get_secret_value()


def templates() -> Jinja2Templates:
    # Autoescape everything, whatever the file's name: every value shown comes from Redis, and
    # much of it from strangers (company names, page titles, drafts).
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = when
    env.filters["when_ms"] = lambda ms: when(ms / 1000 if ms else None)
    return Jinja2Templates(env=env)


def when(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


async def healthz(_request: Request) -> Response:
    return PlainTextResponse("ok")


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    return answer(request, exc.detail, ok=False, status=exc.status_code)


def routes() -> list[BaseRoute]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        *signin.ROUTES,
        *pages.ROUTES,
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_app(
    settings: Settings,
    *,
    users: dict[str, ConsoleUser] | None = None,
    connect: OpenOps = open_ops,
    clock: Clock = time.time,
) -> Starlette:
    """`users`: the built-in users (default: read from the settings). Raises ConsoleNotReady
    or UsersError with one line when it cannot start."""
    users = load_users(settings.console) if users is None else users
    secret = check_startable(settings, users)
    config = settings.console

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with connect(settings) as ops:
            app.state.console = Console(
                settings=config,
                ops=ops,
                users=users,
                sessions=SessionStore(
                    ops.redis,
                    prefix=settings.key_prefix,
                    secret=secret,
                    idle_s=config.idle_timeout_s,
                    max_s=config.session_max_s,
                    clock=clock,
                ),
                throttle=SigninThrottle(
                    ops.redis,
                    prefix=settings.key_prefix,
                    settings=config,
                    clock=clock,
                ),
                templates=templates(),
                secret=secret,
                clock=clock,
            )
            yield

    return Starlette(
        routes=routes(),
        # Outermost first: every response gets the headers, the gate's refusals included.
        middleware=[Middleware(SecurityHeaders), Middleware(SignInGate)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
        # The largest form is an edited draft (20,000 characters) or a few hundred ticked ids.
        max_body_size=MAX_BODY_BYTES,
    )
